package kavka.clients;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * The steps of the transaction verification tests (KIP-890, tests/clients/test_java_txn_verification.py).
 *
 * <p>{@code txn-plan BOOTSTRAP TOPIC TRANSACTIONAL_ID PLAN [name=value ...]} runs one
 * transaction per PLAN item, comma-separated, each {@code commit:P/P/...} or {@code abort:P/...}:
 * one record {@code "<n>"} to each partition P, acknowledged, then commit or abort.  It prints
 * {@code {"transaction", "ended", "offsets"}} per transaction (offsets per record, in order).
 *
 * <p>{@code txn-zombie BOOTSTRAP TOPIC TRANSACTIONAL_ID WAIT_MS PARTITIONS [name=value ...]} begins a
 * transaction, writes {@code "before"} to partition 0 (printing {@code {"sent", "offset"}}), sleeps
 * WAIT_MS (longer than transaction.timeout.ms, so the coordinator aborts it), then keeps writing:
 * {@code "zombie"} to each of PARTITIONS (comma-separated), printing {@code {"zombie", "offset"}} or
 * {@code {"zombie", "error"}} per record, and tries to commit: {@code {"commit": "ok"}} or
 * {@code {"commit": "error", "error"}}.
 */
final class TxnVerification {
    private TxnVerification() {
    }

    private static byte[] bytes(String value) {
        return value.getBytes(StandardCharsets.UTF_8);
    }

    static void run(Main.Args args) throws Exception {
        String topic = args.at(0);
        int n = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(args.with(Transactions.producerDefaults(args.at(1))))) {
            producer.initTransactions();
            for (String item : args.at(2).split(",")) {
                String[] decision = item.split(":");
                producer.beginTransaction();
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (String partition : decision[1].split("/")) {
                    sent.add(producer.send(new ProducerRecord<>(topic, Integer.parseInt(partition), null, bytes("" + n++))));
                }
                List<Long> offsets = new ArrayList<>();
                for (Future<RecordMetadata> future : sent) {
                    offsets.add(future.get().offset());
                }
                if (decision[0].equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
                Json.print(Json.obj("transaction", item, "ended", decision[0], "offsets", offsets));
            }
        }
    }

    static void zombie(Main.Args args) throws Exception {
        String topic = args.at(0);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(args.with(Transactions.producerDefaults(args.at(1))))) {
            producer.initTransactions();
            producer.beginTransaction();
            RecordMetadata before = producer.send(new ProducerRecord<>(topic, 0, null, bytes("before"))).get();
            Json.print(Json.obj("sent", "before", "offset", before.offset()));
            Thread.sleep(args.intAt(2));
            for (String partition : args.at(3).split(",")) {
                try {
                    RecordMetadata meta = producer.send(
                            new ProducerRecord<>(topic, Integer.parseInt(partition), null, bytes("zombie"))).get();
                    Json.print(Json.obj("zombie", Integer.parseInt(partition), "offset", meta.offset()));
                } catch (ExecutionException | RuntimeException e) {
                    Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
                    Json.print(Json.obj("zombie", Integer.parseInt(partition), "error",
                            cause.getClass().getSimpleName(), "message", String.valueOf(cause.getMessage())));
                }
            }
            try {
                producer.commitTransaction();
                Json.print(Json.obj("commit", "ok"));
            } catch (RuntimeException e) {
                Json.print(Json.obj("commit", "error", "error", e.getClass().getSimpleName()));
            }
        }
    }
}
