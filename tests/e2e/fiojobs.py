"""Read fio job files and write scaled, renamed copies of them.

The conformance suite (test_conformance.py) runs fio's own job files through
xdevice and through fio's own engines. It never edits them by hand: a job file
is parsed into sections, [global] is folded into every job (so each rewritten
section carries all of its options and sections of different storage types
can share one fio run without leaking options into each other), options are
overridden or dropped, and the result is written back as a new job file.

fio's job-file syntax as used by t/jobs and examples: [section] headers,
key=value or a bare key, whole-line comments starting with # or ;, and
trailing comments after whitespace.
"""
import re

DROP = object()  # an override value that removes the option

# Options whose value names a file fio writes in its working directory: each
# copy of a job gets its own prefix so that copies never share a log.
LOG_OPTIONS = ("write_bw_log", "write_lat_log", "write_iops_log", "write_hist_log",
               "write_iolog")


class JobFile:
    """A parsed job file: sections in order, each a list of (key, value).

    value is None for a bare option (`thread`). [global] is folded into the
    sections that follow it, as fio applies it."""

    def __init__(self, sections):
        self.sections = sections  # [(name, [(key, value), ...])]

    @classmethod
    def parse(cls, text, where="<job>"):
        sections, glob, cur = [], [], None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            m = re.fullmatch(r"\[(.+)\]", line)
            if m:
                name = m.group(1).strip()
                if name == "global":
                    cur = glob
                else:
                    cur = list(glob)
                    sections.append((name, cur))
                continue
            if cur is None:
                raise ValueError(f"{where}:{lineno}: option outside a section: {raw!r}")
            key, eq, value = line.partition("=")
            cur.append((key.strip(), value.strip() if eq else None))
        return cls([(n, _fold(opts)) for n, opts in sections])

    def names(self):
        return [n for n, _ in self.sections]

    def get(self, section, key, default=None):
        for n, opts in self.sections:
            if n == section:
                return dict(opts).get(key, default)
        raise KeyError(section)

    def any_has(self, key):
        return any(key in dict(opts) for _, opts in self.sections)

    def values(self, key):
        return [dict(opts)[key] for _, opts in self.sections if key in dict(opts)]

    def override(self, changes):
        """A copy with changes applied: {section or '*': {key: value|None|DROP}}.

        A value replaces the option (or adds it at the end); DROP removes it;
        a callable gets the current value of an option that is there and
        returns one of those. '*' applies to every section, then a section's own entry."""
        out = []
        for name, opts in self.sections:
            d = dict(opts)
            for scope in ("*", name):
                for k, v in changes.get(scope, {}).items():
                    if callable(v):
                        if k not in d:
                            continue  # a callable only rewrites what is there
                        v = v(d[k])
                    if v is DROP:
                        d.pop(k, None)
                    else:
                        d[k] = v
            out.append((name, list(d.items())))
        return JobFile(out)

    def only(self, names):
        return JobFile([(n, o) for n, o in self.sections if n in names])

    def render(self, prefix, head, first_opts=()):
        """Job-file text with every section renamed prefix+name, head options
        first in each section (ioengine= must precede engine options), and
        first_opts added to the first section only (stonewall between the
        copies of one run)."""
        lines = []
        for i, (name, opts) in enumerate(self.sections):
            lines.append(f"[{prefix}{name}]")
            d = dict(opts)
            for k in ("wait_for",):
                if d.get(k):
                    d[k] = prefix + d[k]
            for k in LOG_OPTIONS:
                if k in d and d[k] is not None:
                    d[k] = prefix + d[k]
            items = list(head) + [(k, v) for k, v in d.items()]
            if i == 0:
                items += list(first_opts)
            for k, v in items:
                lines.append(k if v is None else f"{k}={v}")
            lines.append("")
        return "\n".join(lines)


def _strip_comment(line):
    s = line.lstrip()
    if s.startswith("#") or s.startswith(";"):
        return ""
    # trailing comments need whitespace before them (values hold no spaces)
    return re.split(r"\s[#;]", line, maxsplit=1)[0]


def _fold(opts):
    """Later settings of a key replace earlier ones (a section over [global])."""
    d = {}
    for k, v in opts:
        d.pop(k, None)
        d[k] = v
    return list(d.items())


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text):
    """fio's size syntax as the job files use it: 128m, 1G, 100MiB, 20000."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]
