package kavka.clients;

import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * The Kafka Streams step: {@code wordcount BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR [name=value ...]}.
 *
 * <p>Kafka's word count, at-least-once unless a {@code processing.guarantee} setting is given (e.g.
 * exactly_once_v2): lines (string values) of INPUT are split into lower-case words, re-keyed by word
 * (repartition topic APPLICATION_ID-words-repartition), counted in store "counts" (changelog
 * APPLICATION_ID-counts-changelog) and every new count is written to OUTPUT as word -> count (string
 * key, 8-byte long value).  Prints {@code {"state": S}} on every state change and
 * {@code {"error": E, "message": M}} for an exception that stops a stream thread (the client then shuts
 * down).  Runs until SIGTERM (or an error).
 */
final class WordCount {
    private WordCount() {
    }

    static void run(Main.Args args) throws Exception {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args.at(0), Consumed.with(Serdes.ByteArray(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(args.at(1), Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams streams = new KafkaStreams(builder.build(), args.with(Map.of(
                StreamsConfig.APPLICATION_ID_CONFIG, args.at(2),
                StreamsConfig.STATE_DIR_CONFIG, args.at(3),
                StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE,
                StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200",
                StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0")));
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            Json.print(Json.obj("state", now.name(), "from", before.name()));
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            Json.print(Json.obj("error", e.getClass().getName(), "message", String.valueOf(e.getMessage()),
                    "cause", e.getCause() == null ? null : e.getCause().toString()));
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        // close() can return before the listener has printed NOT_RUNNING (KafkaStreams calls the
        // listener after waking its waiters), and the JVM halts once the hooks are done: wait for it.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(10));
            try {
                stopped.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        streams.start();
        stopped.await();
        streams.close(Duration.ofSeconds(10));
    }
}
