#!/usr/bin/env bash
# Assemble Apache Kafka's broker for the benchmarks' `kafka` target: kafka_2.13 and every runtime
# dependency (pom.xml here) into OUT/lib, so that
#   java -cp 'OUT/lib/*' kafka.tools.StorageTool format ...   and   java -cp 'OUT/lib/*' kafka.Kafka server.properties
# run with nothing else.  OUT defaults to ~/.cache/kavka/apache-kafka-<version>; nothing is done if it is
# complete already.  Needs Java 17+ and Maven; the first run downloads from Maven Central into ~/.m2.
# Prints OUT on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/kavka/apache-kafka-$version}
if [ -f "$out/COMPLETE" ]; then
  echo "$out"
  exit 0
fi
command -v java >/dev/null || { echo "assemble.sh: java not found (Java 17+ is needed)" >&2; exit 2; }
command -v mvn >/dev/null || { echo "assemble.sh: mvn not found (Maven is needed)" >&2; exit 2; }
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp "$here/pom.xml" "$build/"
(cd "$build" && mvn -B -q -Dstyle.color=never package) >&2
rm -rf "$out"
mkdir -p "$out/lib"
cp "$build"/target/lib/*.jar "$out/lib/"
echo "$version" > "$out/COMPLETE"
echo "$out"
