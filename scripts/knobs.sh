# shellcheck shell=bash
# knobs.sh - sourced by the bench scripts: their environment knobs checked
# as text before anything runs, each bad value refused in one line naming
# the knob, the value and what is allowed (exit 2). Checked as text: a
# value goes into $(( )) afterwards, which would evaluate 'x[$(cmd)]'.
# The caller sets KNOB_SCRIPT (its name, for the messages).

knob_die() { echo "${KNOB_SCRIPT:-$(basename "$0")}: $*" >&2; exit 2; }

# knob_whole NAME VALUE LEAST: a whole number, at least LEAST
knob_whole() {
    [[ $2 =~ ^(0|[1-9][0-9]{0,8})$ ]] && (($2 >= $3)) ||
        knob_die "$1=$2: want a whole number >= $3"
}

# knob_size NAME VALUE: a size such as 64m or 1g; prints it in bytes
knob_size() {
    [[ $2 =~ ^[1-9][0-9]{0,12}[kKmMgGtT]?$ ]] || knob_die "$1=$2: want a size such as 64m or 1g"
    numfmt --from=iec "${2^^}"
}

# knob_dir NAME VALUE: an existing directory
knob_dir() {
    [ -d "$2" ] || knob_die "$1=$2: not a directory; allowed: an existing directory (the script makes its own inside)"
}

# knob_dir_name DEFAULT_KNOB VALUE: the knob a directory came from, for the
# messages: DEFAULT_KNOB when set, else XDEVICE_SCRATCH when that is
knob_dir_name() {
    if [ -z "${!1:-}" ] && [ -n "${XDEVICE_SCRATCH:-}" ]; then echo XDEVICE_SCRATCH; else echo "$1"; fi
}
