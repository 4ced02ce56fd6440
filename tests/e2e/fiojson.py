"""fio's JSON document inside an output file that may hold other lines too.

fio writes its own notices (and, before fio 3.33's log_info was avoided,
xdevice's) to the same stream as --output-format=json, so the document is
located in the text rather than assumed to be all of it. Shared by the pytest
suite, tests/torture.py and tests/sanitize/sanitize.py."""
import json
import re


def split_output(raw: str):
    """(the JSON document or None, the text around it)."""
    if not raw.strip():
        return None, ""
    # at a line's start; or glued to a line fio's job processes wrote to the
    # same file as the document began (io_u errors: one without its newline)
    m = re.search(r"^\{", raw, re.M) or re.search(r'\{(?=\s*"fio version")', raw)
    if not m:
        return None, raw
    try:
        doc, end = json.JSONDecoder().raw_decode(raw, m.start())
    except json.JSONDecodeError:
        return None, raw
    return doc, raw[: m.start()] + raw[end:]
