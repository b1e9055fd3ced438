package kavka.clients;

import java.time.Duration;
import java.util.ArrayList;
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
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The transaction steps (issue 12): a transactional producer that commits and aborts, a second
 * producer with the same transactional.id fencing the first, and a consumer that reads to the end.
 *
 * <p>{@code transactions BOOTSTRAP TOPIC PARTITIONS COUNT [name=value ...]}: initTransactions, then three
 * transactions of COUNT records to every partition: committed (values {@code commit-1-P-I}), aborted after
 * every record was acknowledged ({@code abort-P-I}), committed ({@code commit-2-P-I}).  Prints each
 * acknowledged record {@code {"txn", "partition", "offset", "value"}} and {@code {"ended": "commit"|"abort"}}
 * after each commitTransaction / abortTransaction returned.
 *
 * <p>{@code fence BOOTSTRAP TOPIC [name=value ...]}: producer A (transactional.id {@code java-fence})
 * sends {@code zombie} to partition 0 in an open transaction; producer B with the same id calls
 * initTransactions, then commits {@code live}; A's commitTransaction then fails.  Prints
 * {@code {"b_committed": true}} and {@code {"a_commit_error": CLASS}} (or {@code {"a_committed": true}}).
 *
 * <p>{@code read-to-end BOOTSTRAP TOPIC PARTITIONS [SECONDS] [name=value ...]}: assigns every partition from
 * the beginning, asks endOffsets (the last stable offset under isolation.level=read_committed) and polls
 * until every position reached it (or SECONDS, default 20, went by).  Prints each record
 * {@code {"partition", "offset", "value"}}, then {@code {"end_offsets": [...], "positions": [...]}}.
 */
final class Transactions {
    private static final int TIMEOUT_MS = 15_000;

    private Transactions() {
    }

    static Map<String, Object> producerDefaults(String transactionalId) {
        return Map.of(
                "key.serializer", ByteArraySerializer.class.getName(),
                "value.serializer", ByteArraySerializer.class.getName(),
                "transactional.id", transactionalId,
                "linger.ms", "5",
                "delivery.timeout.ms", String.valueOf(TIMEOUT_MS),
                "request.timeout.ms", "10000",
                "max.block.ms", String.valueOf(TIMEOUT_MS));
    }

    static void produce(Main.Args args) throws Exception {
        String topic = args.at(0);
        int partitions = args.intAt(1);
        int count = args.intAt(2);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(args.with(producerDefaults("java-txn")))) {
            producer.initTransactions();
            transaction(producer, topic, partitions, count, "commit-1", true);
            transaction(producer, topic, partitions, count, "abort", false);
            transaction(producer, topic, partitions, count, "commit-2", true);
        }
    }

    /** One transaction of COUNT records per partition, every one acknowledged before it ends. */
    private static void transaction(KafkaProducer<byte[], byte[]> producer, String topic, int partitions, int count,
                                    String name, boolean commit) throws Exception {
        producer.beginTransaction();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        List<String> values = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            for (int p = 0; p < partitions; p++) {
                String value = name + "-" + p + "-" + i;
                values.add(value);
                sent.add(producer.send(new ProducerRecord<>(topic, p, null, value.getBytes())));
            }
        }
        producer.flush();
        for (int i = 0; i < sent.size(); i++) {
            RecordMetadata meta = sent.get(i).get();
            Json.print(Json.obj("txn", name, "partition", meta.partition(), "offset", meta.offset(),
                    "value", values.get(i)));
        }
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
        Json.print(Json.obj("ended", commit ? "commit" : "abort"));
    }

    static void fence(Main.Args args) throws Exception {
        String topic = args.at(0);
        try (KafkaProducer<byte[], byte[]> a = new KafkaProducer<>(args.with(producerDefaults("java-fence")));
             KafkaProducer<byte[], byte[]> b = new KafkaProducer<>(args.with(producerDefaults("java-fence")))) {
            a.initTransactions();
            a.beginTransaction();
            a.send(new ProducerRecord<>(topic, 0, null, "zombie".getBytes())).get();
            b.initTransactions();
            b.beginTransaction();
            b.send(new ProducerRecord<>(topic, 0, null, "live".getBytes())).get();
            b.commitTransaction();
            Json.print(Json.obj("b_committed", true));
            try {
                a.commitTransaction();
                Json.print(Json.obj("a_committed", true));
            } catch (RuntimeException e) {
                Json.print(Json.obj("a_commit_error", e.getClass().getName(), "message", e.getMessage()));
            }
        } catch (ExecutionException e) {
            Json.print(Json.obj("error", e.getCause().getClass().getName(), "message", e.getCause().getMessage()));
            System.exit(1);
        }
    }

    static void readToEnd(Main.Args args) {
        long deadline = Records.deadline(args, 2);
        List<TopicPartition> assigned = Records.partitions(args.at(0), args.intAt(1));
        try (KafkaConsumer<byte[], byte[]> consumer = Records.consumer(args)) {
            consumer.assign(assigned);
            consumer.seekToBeginning(assigned);
            Map<TopicPartition, Long> ends = consumer.endOffsets(assigned);
            while (!reached(consumer, ends) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Json.print(Json.obj("partition", r.partition(), "offset", r.offset(),
                            "value", new String(r.value())));
                }
            }
            List<Long> endOffsets = new ArrayList<>();
            List<Long> positions = new ArrayList<>();
            for (TopicPartition tp : assigned) {
                endOffsets.add(ends.get(tp));
                positions.add(consumer.position(tp));
            }
            Json.print(Json.obj("end_offsets", endOffsets, "positions", positions));
        }
    }

    private static boolean reached(KafkaConsumer<byte[], byte[]> consumer, Map<TopicPartition, Long> ends) {
        for (Map.Entry<TopicPartition, Long> end : ends.entrySet()) {
            if (consumer.position(end.getKey()) < end.getValue()) {
                return false;
            }
        }
        return true;
    }
}
