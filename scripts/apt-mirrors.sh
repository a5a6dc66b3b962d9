#!/usr/bin/env bash
# Prints the URIs of this machine's apt sources, one per line (one-line
# `deb` entries and deb822 `URIs:` fields), so that scripts fetch from the
# same mirror apt uses. Sourced or run:
#   scripts/apt-mirrors.sh | grep -E '/debian/?$'
apt_mirrors() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { print $i; break } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  apt_mirrors
fi
