package kavka.clients;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

/**
 * The admin step: {@code admin BOOTSTRAP TOPIC PARTITIONS [config.NAME=VALUE ...]}.
 *
 * <p>Creates TOPIC (replication factor 1, with the topic configs given as {@code config.NAME=VALUE}), prints
 * each answer as one line keyed by what was asked: {@code create} (what CreateTopics returned),
 * {@code create_again} (the error of a second create), {@code describe_topic}, {@code describe_configs},
 * {@code describe_cluster}, {@code delete}, then {@code listed_after_delete}.  An error is printed as its
 * exception's simple class name.
 */
final class Admin {
    private static final long TIMEOUT_S = 10;

    private Admin() {
    }

    static void run(Main.Args args) throws Exception {
        String topic = args.at(0);
        int partitions = args.intAt(1);
        Map<String, String> configs = new LinkedHashMap<>();
        args.settings().stringPropertyNames().stream().filter(n -> n.startsWith("config."))
                .forEach(n -> configs.put(n.substring("config.".length()), args.settings().getProperty(n)));
        args.settings().keySet().removeIf(n -> ((String) n).startsWith("config."));
        NewTopic newTopic = new NewTopic(topic, partitions, (short) 1).configs(configs);
        try (AdminClient admin = AdminClient.create(args.with(Map.of("request.timeout.ms", "10000")))) {
            CreateTopicsResult created = admin.createTopics(List.of(newTopic));
            Json.print(Json.obj("create", attempt(() -> Json.obj(
                    "partitions", get(created.numPartitions(topic)),
                    "replication_factor", get(created.replicationFactor(topic)),
                    "topic_id", get(created.topicId(topic)).toString(),
                    "configs", entries(get(created.config(topic)), configs.keySet())))));
            Json.print(Json.obj("create_again", attempt(() -> get(admin.createTopics(List.of(newTopic)).all()))));
            Json.print(Json.obj("describe_topic", attempt(() -> describe(
                    get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic)))));
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Json.print(Json.obj("describe_configs", attempt(() -> entries(
                    get(admin.describeConfigs(List.of(resource)).all()).get(resource), null))));
            Json.print(Json.obj("describe_cluster", attempt(() -> cluster(admin.describeCluster()))));
            Json.print(Json.obj("delete", attempt(() -> get(admin.deleteTopics(List.of(topic)).all()))));
            Json.print(Json.obj("listed_after_delete", attempt(() -> get(admin.listTopics().names()).contains(topic))));
        }
    }

    /** An admin call's answer, or {"error": its exception's class} for a failed call. */
    private static Object attempt(Call call) {
        try {
            Object answer = call.run();
            return answer == null ? "ok" : answer;
        } catch (ExecutionException e) {
            return Json.obj("error", e.getCause().getClass().getSimpleName(), "message", e.getCause().getMessage());
        } catch (Exception e) {
            return Json.obj("error", e.getClass().getSimpleName(), "message", e.getMessage());
        }
    }

    private interface Call {
        Object run() throws Exception;
    }

    private static <T> T get(KafkaFuture<T> future) throws Exception {
        return future.get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    private static Map<String, Object> describe(TopicDescription d) {
        List<Object> parts = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            parts.add(Json.obj("partition", p.partition(), "leader", p.leader() == null ? null : p.leader().id(),
                    "replicas", p.replicas().stream().map(Node::id).toList(),
                    "isr", p.isr().stream().map(Node::id).toList()));
        }
        return Json.obj("name", d.name(), "internal", d.isInternal(), "topic_id", d.topicId().toString(),
                "partitions", parts);
    }

    /** name -> {value, source, read_only}; only the names given, unless null. */
    private static Map<String, Object> entries(Config config, Set<String> names) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (ConfigEntry e : config.entries()) {
            if (names == null || names.contains(e.name())) {
                out.put(e.name(), Json.obj("value", e.value(), "source", e.source().name(),
                        "read_only", e.isReadOnly()));
            }
        }
        return out;
    }

    private static Map<String, Object> cluster(DescribeClusterResult result) throws Exception {
        Node controller = get(result.controller());
        List<Object> nodes = new ArrayList<>();
        for (Node n : get(result.nodes())) {
            nodes.add(Json.obj("id", n.id(), "host", n.host(), "port", n.port()));
        }
        return Json.obj("cluster_id", get(result.clusterId()), "controller", controller == null ? null : controller.id(),
                "nodes", nodes);
    }
}
