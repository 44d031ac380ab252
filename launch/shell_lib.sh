# Helpers shared by the launch scripts (sourced, not run). The caller sets SCRIPT_NAME.

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 2
}

# An option's value must follow it, and must not be the next option.
need_value() {
  [ "$2" -ge 2 ] && [[ $3 != --* ]] || die "$1 needs a value (see --help)"
}

# One word as POSIX shell source: bare when it is plain, else in single quotes.
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./=:@%+,-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Words as one line of shell source, e.g. for --dry-run or a command a remote shell runs.
quote_words() {
  local word out=()
  for word in "$@"; do
    out+=("$(shell_quote "$word")")
  done
  echo "${out[*]}"
}
