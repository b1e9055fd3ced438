package kavka.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The authorization probe: {@code authz-probe BOOTSTRAP TOPIC GROUP TRANSACTIONAL_ID [name=value ...]}, run
 * as one principal (the command line's security settings), tries what a client of the topic does and
 * prints one line per try, either its result or {@code {"STEP_error": EXCEPTION_CLASS_SIMPLE_NAME}}:
 *
 * <ol>
 * <li>{@code {"produce": OFFSET}}: one record {@code java} to partition 0 of TOPIC;</li>
 * <li>{@code {"consume": [VALUE, ...]}}: GROUP's committed offset of partition 0 asked first, then
 *     subscribed in GROUP, the values polled until some came (10 s at most), then committed;</li>
 * <li>{@code {"topics": [NAME, ...]}}: the Admin client's listTopics;</li>
 * <li>{@code {"create": true}}: createTopics of {@code TOPIC-java};</li>
 * <li>{@code {"txn": "committed"}}: a transactional producer with TRANSACTIONAL_ID: initTransactions, one
 *     record {@code java-txn}, commitTransaction.</li>
 * </ol>
 */
final class Authz {
    private static final int TIMEOUT_MS = 10_000;

    private Authz() {
    }

    interface Try {
        Object run() throws Exception;
    }

    static void probe(Main.Args args) {
        String topic = args.at(0);
        attempt("produce", () -> produce(args, topic, null));
        attempt("consume", () -> consume(args, topic, args.at(1)));
        try (AdminClient admin = AdminClient.create(args.with(Map.of(
                "default.api.timeout.ms", TIMEOUT_MS, "request.timeout.ms", 5000)))) {
            attempt("topics", () -> new TreeSet<>(admin.listTopics().names().get()));
            attempt("create", () -> {
                admin.createTopics(List.of(new NewTopic(topic + "-java", 1, (short) 1))).all().get();
                return true;
            });
        }
        attempt("txn", () -> produce(args, topic, args.at(2)));
    }

    private static void attempt(String step, Try action) {
        try {
            Json.print(Json.obj(step, action.run()));
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            Json.print(Json.obj(step + "_error", cause.getClass().getSimpleName(), "message", cause.getMessage()));
        }
    }

    private static Properties producerSettings(Main.Args args, String transactionalId) {
        Properties props = args.with(Map.of(
                "key.serializer", ByteArraySerializer.class.getName(),
                "value.serializer", ByteArraySerializer.class.getName(),
                "delivery.timeout.ms", String.valueOf(TIMEOUT_MS),
                "request.timeout.ms", "5000",
                "max.block.ms", String.valueOf(TIMEOUT_MS)));
        if (transactionalId != null) {
            props.put("transactional.id", transactionalId);
        }
        return props;
    }

    private static Object produce(Main.Args args, String topic, String transactionalId) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerSettings(args, transactionalId))) {
            if (transactionalId == null) {
                return producer.send(new ProducerRecord<>(topic, 0, null, "java".getBytes())).get().offset();
            }
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, 0, null, "java-txn".getBytes())).get();
            producer.commitTransaction();
            return "committed";
        }
    }

    private static Object consume(Main.Args args, String topic, String group) {
        Properties props = args.with(Map.of(
                "group.id", group,
                "key.deserializer", ByteArrayDeserializer.class.getName(),
                "value.deserializer", ByteArrayDeserializer.class.getName(),
                "auto.offset.reset", "earliest",
                "enable.auto.commit", "false"));
        List<String> values = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofMillis(TIMEOUT_MS).toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            // The group's offsets first: its coordinator's answer is then the first the consumer gets
            // (subscribe's metadata of a topic the principal may not describe would answer first).
            consumer.committed(Set.of(new TopicPartition(topic, 0)), Duration.ofMillis(TIMEOUT_MS));
            consumer.subscribe(List.of(topic));
            while (values.isEmpty() && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    values.add(new String(r.value()));
                }
            }
            consumer.commitSync();
        }
        return values;
    }
}
