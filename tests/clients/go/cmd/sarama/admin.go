package main

import (
	"github.com/IBM/sarama"
	"github.com/kavka/tests/clients/go/internal/scenario"
)

func ptr(s string) *string { return &s }

// The topic the admin step creates: 4 partitions, one replica, two topic configs.
var adminTopic = sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
	ConfigEntries: map[string]*string{"cleanup.policy": ptr("compact"), "retention.ms": ptr("3600000")}}

// Admin creates a topic with configs, describes it, its configs and the cluster, creates it
// again (TOPIC_ALREADY_EXISTS) and deletes it.
func (c client) Admin(topic string) {
	connected := c.connect(config())
	defer connected.Close()
	adm, err := sarama.NewClusterAdminFromClient(connected)
	scenario.Check(err, "creating the cluster admin")

	err = adm.CreateTopic(topic, &adminTopic, false)
	scenario.Emit("created", map[string]any{"topic": topic, "error": errName(err)})
	describeTopic(adm, topic)
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	scenario.Check(err, "describing the topic's configs")
	configs := map[string]any{}
	for _, c := range entries {
		configs[c.Name] = map[string]any{"value": c.Value, "source": c.Source.String(), "sensitive": c.Sensitive}
	}
	scenario.Emit("configs", map[string]any{"resource": topic, "error": "", "configs": configs})
	brokers, controller, err := adm.DescribeCluster()
	scenario.Check(err, "describing the cluster")
	described := []map[string]any{}
	for _, b := range brokers {
		described = append(described, map[string]any{"node_id": b.ID(), "addr": b.Addr()})
	}
	scenario.Emit("cluster", map[string]any{"controller": controller, "brokers": described})
	err = adm.CreateTopic(topic, &adminTopic, false)
	scenario.Emit("created", map[string]any{"topic": topic, "error": errName(err)})
	err = adm.DeleteTopic(topic)
	scenario.Emit("deleted", map[string]any{"topic": topic, "error": errName(err)})
}

// describeTopic prints the topic's metadata: its error and every partition's leader and replicas.
func describeTopic(adm sarama.ClusterAdmin, topic string) {
	described, err := adm.DescribeTopics([]string{topic})
	scenario.Check(err, "describing the topic")
	for _, t := range described {
		partitions := []map[string]any{}
		for _, p := range t.Partitions {
			partitions = append(partitions, map[string]any{"partition": p.ID, "leader": p.Leader,
				"replicas": p.Replicas, "isr": p.Isr, "error": errName(p.Err)})
		}
		scenario.Emit("topic", map[string]any{"topic": t.Name, "error": errName(t.Err), "internal": t.IsInternal,
			"partitions": partitions})
	}
}
