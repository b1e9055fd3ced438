package kavka.clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The records and idempotent steps: produce what stdin lists, and read a topic back with assign().
 *
 * <p>{@code produce BOOTSTRAP TOPIC [name=value ...]} reads one record a line,
 * {@code PARTITION TIMESTAMP KEY VALUE HEADERS}, KEY and VALUE in base64 or '-' for null, HEADERS '-' or
 * {@code NAME:VALUE,...} in base64 (VALUE '-' for null); it prints, in input order, where each record
 * was stored: {@code {"partition", "offset", "timestamp"}}, or {@code {"error"}}.
 *
 * <p>{@code consume BOOTSTRAP TOPIC PARTITIONS COUNT [SECONDS]} assigns every partition from the
 * beginning and prints each record until COUNT were read (or SECONDS, default 20, went by), then
 * {@code {"consumed": N}}.
 */
final class Records {
    private Records() {
    }

    static void produce(Main.Args args) throws Exception {
        String topic = args.at(0);
        List<ProducerRecord<byte[], byte[]>> records = readRecords(topic);
        Map<String, Object> defaults = Map.of(
                "key.serializer", ByteArraySerializer.class.getName(),
                "value.serializer", ByteArraySerializer.class.getName(),
                "linger.ms", "5",
                "delivery.timeout.ms", "20000",
                "request.timeout.ms", "10000");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(args.with(defaults))) {
            for (ProducerRecord<byte[], byte[]> record : records) {
                sent.add(producer.send(record));
            }
            producer.flush();
        }
        boolean failed = false;
        for (Future<RecordMetadata> future : sent) {
            try {
                RecordMetadata meta = future.get();
                Json.print(Json.obj("partition", meta.partition(), "offset", meta.offset(),
                        "timestamp", meta.timestamp()));
            } catch (ExecutionException e) {
                failed = true;
                Json.print(Json.obj("error", e.getCause().getClass().getSimpleName(),
                        "message", e.getCause().getMessage()));
            }
        }
        System.exit(failed ? 1 : 0);
    }

    private static List<ProducerRecord<byte[], byte[]>> readRecords(String topic) throws Exception {
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.trim().split(" ");
            if (f.length != 5) {
                throw new IllegalArgumentException("a record needs 5 fields: " + line);
            }
            records.add(new ProducerRecord<>(topic, Integer.valueOf(f[0]), Long.valueOf(f[1]),
                    Json.unb64(f[2]), Json.unb64(f[3]), headers(f[4])));
        }
        return records;
    }

    private static List<Header> headers(String field) {
        List<Header> headers = new ArrayList<>();
        if (field.equals("-")) {
            return headers;
        }
        for (String pair : field.split(",")) {
            String[] nv = pair.split(":", 2);
            headers.add(new RecordHeader(new String(Json.unb64(nv[0]), StandardCharsets.UTF_8), Json.unb64(nv[1])));
        }
        return headers;
    }

    /** A byte-array consumer with the command line's settings. */
    static KafkaConsumer<byte[], byte[]> consumer(Main.Args args) {
        return new KafkaConsumer<>(args.with(Map.of(
                "key.deserializer", ByteArrayDeserializer.class.getName(),
                "value.deserializer", ByteArrayDeserializer.class.getName())));
    }

    /** Partitions 0 to COUNT - 1 of TOPIC. */
    static List<TopicPartition> partitions(String topic, int count) {
        List<TopicPartition> all = new ArrayList<>();
        for (int p = 0; p < count; p++) {
            all.add(new TopicPartition(topic, p));
        }
        return all;
    }

    /** System.nanoTime() after the seconds given as argument INDEX (20 if there is none). */
    static long deadline(Main.Args args, int index) {
        int seconds = args.positional().size() > index ? args.intAt(index) : 20;
        return System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
    }

    static void consume(Main.Args args) {
        int count = args.intAt(2);
        long deadline = deadline(args, 3);
        List<TopicPartition> assigned = partitions(args.at(0), args.intAt(1));
        int consumed = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(args)) {
            consumer.assign(assigned);
            consumer.seekToBeginning(assigned);
            while (consumed < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Json.print(describe(r));
                    consumed++;
                }
            }
        }
        Json.print(Json.obj("consumed", consumed));
    }

    private static Map<String, Object> describe(ConsumerRecord<byte[], byte[]> r) {
        List<Object> headers = new ArrayList<>();
        for (Header h : r.headers()) {
            headers.add(Arrays.asList(h.key(), Json.b64(h.value())));
        }
        return Json.obj("partition", r.partition(), "offset", r.offset(), "key", Json.b64(r.key()),
                "value", Json.b64(r.value()), "headers", headers, "timestamp", r.timestamp(),
                "timestamp_type", r.timestampType().name, "leader_epoch", r.leaderEpoch().orElse(null));
    }
}
