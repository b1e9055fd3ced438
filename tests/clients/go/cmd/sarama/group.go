package main

import (
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/kavka/tests/clients/go/internal/scenario"
)

// member is a sarama.ConsumerGroupHandler that prints its assignment at each generation, each
// batch of records as [partition, offset] pairs, and commits synchronously after each batch.
type member struct{}

func (member) Setup(session sarama.ConsumerGroupSession) error {
	owned := []int32{}
	for _, partitions := range session.Claims() {
		owned = append(owned, partitions...)
	}
	slices.Sort(owned)
	scenario.Emit("assignment", map[string]any{"partitions": owned, "generation": session.GenerationID()})
	return nil
}

func (member) Cleanup(sarama.ConsumerGroupSession) error {
	scenario.Emit("assignment", map[string]any{"partitions": []int32{}})
	return nil
}

func (member) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	var batch [][2]int64
	for m := range claim.Messages() {
		batch = append(batch, [2]int64{int64(m.Partition), m.Offset})
		session.MarkMessage(m, "")
		if len(claim.Messages()) == 0 { // the batch fetched so far is done: commit it
			scenario.Emit("records", map[string]any{"records": batch})
			session.Commit()
			scenario.Emit("committed", map[string]any{"offsets": map[int32]int64{m.Partition: m.Offset + 1}})
			batch = nil
		}
	}
	return nil
}

// Group is one member of a classic consumer group until SIGTERM (then it leaves the group).
func (c client) Group(topic, name, protocol string) {
	if protocol != "classic" {
		scenario.Fail("Sarama has only the classic group protocol, not %q", protocol)
	}
	ctx, cancel := scenario.StepContext(10 * time.Minute)
	defer cancel()
	cfg := config()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	connected := c.connect(cfg)
	consumerGroup, err := sarama.NewConsumerGroupFromClient(name, connected)
	scenario.Check(err, "creating the consumer group")
	go func() {
		for err := range consumerGroup.Errors() {
			scenario.Emit("group_error", map[string]any{"error": errName(err)})
		}
	}()
	for ctx.Err() == nil {
		if err := consumerGroup.Consume(ctx, []string{topic}, member{}); err != nil && ctx.Err() == nil {
			scenario.Emit("group_error", map[string]any{"error": errName(err)})
			time.Sleep(100 * time.Millisecond)
		}
	}
	scenario.Check(consumerGroup.Close(), "leaving the group")
	connected.Close()
	scenario.Emit("closed", nil)
}
