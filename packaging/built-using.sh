#!/bin/sh
# Writes which Debian packages the executable was built from, like Debian's Built-Using field:
# one line per source package, "SOURCE (= VERSION)", then the binary packages and files that
# led to it. Needed to honour the LGPL/GPL of what is linked statically: these are the library
# sources that correspond to the binary (`apt-get source SOURCE=VERSION`).
#
# Usage: built-using.sh OUTPUT CXX FILE...   (FILE: archives, headers or tools that were used)
set -eu
out=$1
cxx=$2
shift 2
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "(not built on a Debian system: no package versions known)" >"$out"
  exit 0
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for file in "$@" $("$cxx" -print-file-name=libc.a) $("$cxx" -print-file-name=libstdc++.a) \
            $("$cxx" -print-file-name=libgcc.a) $("$cxx" -print-file-name=libgcc_eh.a); do
  # dpkg knows the path it installed, which may be the /usr-merged alias of what we got.
  pkg=""
  for path in "$file" "$(readlink -f "$file")" "$(echo "$file" | sed 's,^/usr/lib/,/lib/,')"; do
    pkg=$(dpkg-query -S "$path" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "?? (not from a Debian package): $file" >>"$tmp"
    continue
  fi
  shown=$(readlink -f "$file")
  dpkg-query -W -f='${source:Package} (= ${source:Version})\t'"$pkg"' ${Version}: '"$shown"'\n' "$pkg" >>"$tmp"
done
{
  echo "# Debian source packages (and the binary packages and files) this game was built from."
  sort -u "$tmp"
} >"$out"
