package kavka.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The group step's member: {@code group-member BOOTSTRAP TOPIC GROUP [group.protocol=classic|consumer]}.
 *
 * <p>A subscribed consumer that, after every poll with records, prints {@code {"records": [[p, o], ...]}}
 * and only then commits synchronously (so the parent knows what was processed even if it is killed
 * between the two); it prints {@code {"assignment": [...]}} whenever its assignment changes, the
 * rebalance callbacks as {@code {"event": "assigned"|"revoked"|"lost", "partitions": [...]}}, and a
 * failed commit as {@code {"commit_failed": ERROR}} (expected during a rebalance: the records come
 * again).  SIGTERM makes it leave the group and print {@code {"closed": true}}; SIGKILL does not.
 * With the classic protocol the session timeout is 3 s (heartbeats every 250 ms); with KIP-848's
 * consumer protocol both are the broker's.
 */
final class GroupMember {
    private static volatile boolean stopping;

    private GroupMember() {
    }

    static void run(Main.Args args) throws Exception {
        String topic = args.at(0);
        Properties props = args.with(Map.of(
                "group.id", args.at(1),
                "key.deserializer", ByteArrayDeserializer.class.getName(),
                "value.deserializer", ByteArrayDeserializer.class.getName(),
                "auto.offset.reset", "earliest",
                "enable.auto.commit", "false",
                "max.poll.interval.ms", "20000"));
        if (props.getProperty("group.protocol", "classic").equals("classic")) {
            props.putIfAbsent("session.timeout.ms", "3000");
            props.putIfAbsent("heartbeat.interval.ms", "250");
        }
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            consumer.wakeup();
            try {
                main.join(15000);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }));
        consumer.subscribe(List.of(topic), new Callbacks());
        try {
            loop(consumer);
        } catch (WakeupException e) {
            if (!stopping) {
                throw e;
            }
        } finally {
            consumer.close(Duration.ofSeconds(10));
            Json.print(Json.obj("closed", true));
        }
    }

    private static void loop(KafkaConsumer<byte[], byte[]> consumer) {
        TreeSet<Integer> assignment = null;
        while (!stopping) {
            ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
            if (!records.isEmpty()) {
                List<Object> pairs = new ArrayList<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    pairs.add(List.of(r.partition(), r.offset()));
                }
                Json.print(Json.obj("records", pairs));
                commit(consumer);
            }
            TreeSet<Integer> now = partitions(consumer.assignment());
            if (!now.equals(assignment)) {
                Json.print(Json.obj("assignment", now));
                assignment = now;
            }
        }
    }

    private static void commit(KafkaConsumer<byte[], byte[]> consumer) {
        try {
            consumer.commitSync(Duration.ofSeconds(10));
        } catch (WakeupException e) {
            throw e;
        } catch (KafkaException e) {
            Json.print(Json.obj("commit_failed", e.getClass().getSimpleName(), "message", e.getMessage()));
        }
    }

    private static TreeSet<Integer> partitions(Collection<TopicPartition> tps) {
        TreeSet<Integer> set = new TreeSet<>();
        for (TopicPartition tp : tps) {
            set.add(tp.partition());
        }
        return set;
    }

    /** Prints the rebalance callbacks as they come. */
    private static final class Callbacks implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            Json.print(Json.obj("event", "assigned", "partitions", partitions(partitions)));
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            Json.print(Json.obj("event", "revoked", "partitions", partitions(partitions)));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            Json.print(Json.obj("event", "lost", "partitions", partitions(partitions)));
        }
    }
}
