package main

import (
	"context"

	"github.com/kavka/tests/clients/go/internal/scenario"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The topic the admin step creates: 4 partitions, one replica, two topic configs.
var adminConfigs = map[string]*string{"cleanup.policy": ptr("compact"), "retention.ms": ptr("3600000")}

func ptr(s string) *string { return &s }

// Admin creates a topic with configs, describes it, its configs and the cluster, creates it
// again (TOPIC_ALREADY_EXISTS) and deletes it.  (kgo caches metadata for MetadataMinAge, so
// whether the topic is gone is for the test to check with another client.)
func (f franz) Admin(topic string) {
	ctx, adm, done := f.newAdmin()
	defer done()

	emitCreate := func() {
		created, err := adm.CreateTopic(ctx, 4, 1, adminConfigs, topic)
		if err == nil {
			err = created.Err
		}
		scenario.Emit("created", map[string]any{"topic": created.Topic, "error": errName(err),
			"partitions": created.NumPartitions, "replication_factor": created.ReplicationFactor,
			"has_id": created.ID != kadm.TopicID{}})
	}
	emitCreate()
	describeTopic(ctx, adm, topic)
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	scenario.Check(err, "describing the topic's configs")
	for _, resource := range configs {
		entries := map[string]any{}
		for _, c := range resource.Configs {
			entries[c.Key] = map[string]any{"value": c.Value, "source": c.Source.String(), "sensitive": c.Sensitive}
		}
		scenario.Emit("configs", map[string]any{"resource": resource.Name, "error": errName(resource.Err),
			"configs": entries})
	}
	cluster, err := adm.BrokerMetadata(ctx)
	scenario.Check(err, "describing the cluster")
	brokers := []map[string]any{}
	for _, b := range cluster.Brokers {
		brokers = append(brokers, map[string]any{"node_id": b.NodeID, "host": b.Host, "port": b.Port})
	}
	scenario.Emit("cluster", map[string]any{"cluster_id": cluster.Cluster, "controller": cluster.Controller,
		"brokers": brokers})
	emitCreate()
	deleted, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = deleted.Err
	}
	scenario.Emit("deleted", map[string]any{"topic": deleted.Topic, "error": errName(err)})
}

// describeTopic prints the topic's metadata: its error and every partition's leader and replicas.
func describeTopic(ctx context.Context, adm *kadm.Client, topic string) {
	topics, err := adm.ListTopics(ctx, topic)
	scenario.Check(err, "describing the topic")
	detail := topics[topic]
	partitions := []map[string]any{}
	for _, p := range detail.Partitions.Sorted() {
		partitions = append(partitions, map[string]any{"partition": p.Partition, "leader": p.Leader,
			"replicas": p.Replicas, "isr": p.ISR, "error": errName(p.Err)})
	}
	scenario.Emit("topic", map[string]any{"topic": topic, "error": errName(detail.Err), "internal": detail.IsInternal,
		"partitions": partitions})
}
