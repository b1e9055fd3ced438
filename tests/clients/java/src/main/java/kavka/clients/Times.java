package kavka.clients;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The times step: {@code offsets-for-times BOOTSTRAP TOPIC PARTITIONS TIMESTAMP ...}.
 *
 * <p>For each TIMESTAMP and partition, {@code offsetsForTimes} (ListOffsets with a timestamp):
 * {@code {"timestamp", "partition", "offset", "record_timestamp"}}, offset null where the broker found
 * no record at or after it; then each partition's {@code {"partition", "beginning", "end"}}.
 */
final class Times {
    private Times() {
    }

    static void run(Main.Args args) {
        String topic = args.at(0);
        int partitions = args.intAt(1);
        List<String> timestamps = args.positional().subList(2, args.positional().size());
        Map<String, Object> defaults = Map.of(
                "key.deserializer", ByteArrayDeserializer.class.getName(),
                "value.deserializer", ByteArrayDeserializer.class.getName());
        Duration timeout = Duration.ofSeconds(10);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(args.with(defaults))) {
            for (String ts : timestamps) {
                Map<TopicPartition, Long> query = new HashMap<>();
                for (int p = 0; p < partitions; p++) {
                    query.put(new TopicPartition(topic, p), Long.valueOf(ts));
                }
                Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(query, timeout);
                for (int p = 0; p < partitions; p++) {
                    OffsetAndTimestamp at = found.get(new TopicPartition(topic, p));
                    Json.print(Json.obj("timestamp", Long.valueOf(ts), "partition", p,
                            "offset", at == null ? null : at.offset(),
                            "record_timestamp", at == null ? null : at.timestamp()));
                }
            }
            List<TopicPartition> all = partitionsOf(topic, partitions);
            Map<TopicPartition, Long> beginning = consumer.beginningOffsets(all, timeout);
            Map<TopicPartition, Long> end = consumer.endOffsets(all, timeout);
            for (TopicPartition tp : all) {
                Json.print(Json.obj("partition", tp.partition(), "beginning", beginning.get(tp), "end", end.get(tp)));
            }
        }
    }

    private static List<TopicPartition> partitionsOf(String topic, int partitions) {
        return IntStream.range(0, partitions).mapToObj(p -> new TopicPartition(topic, p)).toList();
    }
}
