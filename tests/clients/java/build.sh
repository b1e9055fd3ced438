#!/usr/bin/env bash
# Build the Java test client into OUT: OUT/lib holds its jar and every runtime dependency, so
#   java -cp 'OUT/lib/*' kavka.clients.Main STEP ...
# runs with nothing else.  Maven downloads into ~/.m2 (its cache) on the first build.
set -euo pipefail
out=${1:?usage: build.sh OUT}
cd "$(dirname "$0")"
rm -rf target
mvn -B -q -Dstyle.color=never package
mkdir -p "$out/lib"
cp target/kavka-java-clients-*.jar target/lib/*.jar "$out/lib/"
rm -rf target
