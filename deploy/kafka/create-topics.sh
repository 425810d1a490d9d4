#!/bin/sh
# Create every topic listed in topics.txt (name, partitions, retention.ms per line)
# and check that each one has the partition count asked for. Idempotent.
#
# Environment: KAFKA_BOOTSTRAP (default kafka:9092), TOPICS_FILE (default: topics.txt
# beside this script), REPLICATION_FACTOR (default 1), KAFKA_TOPICS (the
# kafka-topics.sh to run; default /opt/kafka/bin/kafka-topics.sh, as in apache/kafka).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
topics_file=${TOPICS_FILE:-$here/topics.txt}
replication=${REPLICATION_FACTOR:-1}
kafka_topics=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}

count=0
while read -r name partitions retention extra || [ -n "${name:-}" ]; do
    case "$name" in '' | '#'*) continue ;; esac
    if [ -n "${extra:-}" ] || [ -z "${retention:-}" ]; then
        echo "create-topics: bad line for $name: want 'name partitions retention.ms'" >&2
        exit 2
    fi
    "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor "$replication" \
        --config "retention.ms=$retention"
    actual=$("$kafka_topics" --bootstrap-server "$bootstrap" --describe --topic "$name" \
        | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
    if [ "$actual" != "$partitions" ]; then
        echo "create-topics: $name has ${actual:-no} partitions, want $partitions" >&2
        exit 1
    fi
    echo "create-topics: $name ok ($partitions partitions, retention.ms=$retention)"
    count=$((count + 1))
done < "$topics_file"

if [ "$count" -eq 0 ]; then
    echo "create-topics: no topics in $topics_file" >&2
    exit 2
fi
echo "create-topics: $count topics ready"
