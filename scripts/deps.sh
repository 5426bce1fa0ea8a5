#!/bin/sh
# Installs the Debian packages ilora builds against, when they are missing.
# As root it runs apt-get itself; otherwise it prints the command to run.
set -e
PKGS="gcc make cmake pkg-config libopenblas-openmp-dev libcjson-dev libutf8proc-dev libnlopt-dev sentencepiece"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "ilora: installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null
else
  echo "ilora: missing Debian packages; run: sudo apt-get install$missing" >&2
  exit 1
fi
