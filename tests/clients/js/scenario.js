'use strict'
/*
 * kafkajs running kavka's client scenario (tests/clients/README.md).
 *
 *   node scenario.js STEP BOOTSTRAP < input.json
 *
 * STEP is records, idempotent, group, times or admin (the README's five), or groups (the
 * admin client's view of a consumer group: describe, list, offsets, set, delete); the input (JSON on stdin) says which
 * topic, records and settings to use.  Every observation is printed as one JSON line on
 * stdout ({"event": ...}); the pytest module (tests/clients/test_js_client.py) makes the
 * assertions, so nothing here decides whether a step passed.  kafkajs's own log goes to
 * stderr, at the level of $KAFKAJS_LOG_LEVEL (DEBUG shows every request).
 */

const {
  Kafka, AssignerProtocol, CompressionTypes, CompressionCodecs, ConfigResourceTypes, Partitioners, logLevel,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const zstd = require('zstd-napi')

// kafkajs ships gzip only; a codec is a factory of {compress(encoder), decompress(buffer)}.
// ZSTD is zstd-napi's one-shot API (the kafkajs zstd codec packages fail to build or load on Node 20).
const ZstdCodec = () => ({
  compress: async encoder => zstd.compress(encoder.buffer),
  decompress: async buffer => zstd.decompress(buffer),
})

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}
const TIMEOUT_MS = 20000

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

function stderrLog() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(','),
    logLevel: logLevel.WARN, // $KAFKAJS_LOG_LEVEL overrides it
    logCreator: stderrLog,
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

function text(buffer) {
  return buffer === null || buffer === undefined ? null : buffer.toString('utf8')
}

function headersOf(message) {
  return Object.entries(message.headers || {}).flatMap(([name, values]) => [].concat(values).map(v => [name, text(v)]))
}

function readInput() {
  return new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', chunk => chunks.push(chunk))
    process.stdin.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')))
    process.stdin.on('error', reject)
  })
}

function withDeadline(promise, ms, what) {
  let timer
  const deadline = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not done within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

// -- records: every codec, keys, headers, timestamps over 3 partitions, read back ------------

/** kafkajs takes headers as an object; a name given twice is an array of its values, in order. */
function headersObject(pairs) {
  const headers = {}
  for (const [name, value] of pairs) {
    headers[name] = name in headers ? [].concat(headers[name], value) : value
  }
  return headers
}

function toMessage(record) {
  return {
    partition: record.partition,
    key: record.key,
    value: record.value,
    headers: headersObject(record.headers),
    timestamp: String(record.timestamp),
  }
}

function emitSent(results) {
  for (const r of results) {
    emit('sent', { partition: r.partition, base_offset: Number(r.baseOffset), error_code: r.errorCode })
  }
}

async function createTopic(kafka, topic, partitions) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    emit('created', { topic, created: await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] }) })
  } finally {
    await admin.disconnect()
  }
}

/**
 * Reads `count` records of `topic` with a consumer of its own group, as `kind` events: from the
 * beginning, or from the offsets of `seekTo` (partition -> offset; mid-batch, so kafkajs must
 * skip the batch's earlier records).
 */
async function readBack(kafka, { topic, groupId, count, kind, seekTo }) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 })
  await consumer.connect()
  let seen = 0
  let done
  const finished = new Promise(resolve => { done = resolve })
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        emit(kind, {
          partition,
          offset: Number(message.offset),
          key: text(message.key),
          value: text(message.value),
          headers: headersOf(message),
          timestamp: Number(message.timestamp),
        })
        seen += 1
        if (seen >= count) done()
      },
    })
    for (const [partition, offset] of Object.entries(seekTo || {})) {
      consumer.seek({ topic, partition: Number(partition), offset: String(offset) })
    }
    await withDeadline(finished, TIMEOUT_MS, `reading ${count} records of ${topic}`)
  } finally {
    await consumer.disconnect()
  }
}

async function records(kafka, input) {
  await createTopic(kafka, input.topic, input.partitions)
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    emitSent(await producer.send({
      topic: input.topic,
      compression: CODECS[input.codec],
      messages: input.records.map(toMessage),
    }))
  } finally {
    await producer.disconnect()
  }
  const { topic, records: sent, seek } = input
  await readBack(kafka, { topic, groupId: `${topic}-reader`, count: sent.length, kind: 'record' })
  const after = Object.entries(seek).reduce((n, [p, o]) => n + sent.filter(r => r.partition === Number(p)).length - o, 0)
  await readBack(kafka, { topic, groupId: `${topic}-seeker`, count: after, kind: 'seeked', seekTo: seek })
}

// -- idempotent: one producer id, in order, exactly once ----------------------------------

async function idempotent(kafka, input) {
  await createTopic(kafka, input.topic, 1)
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: TIMEOUT_MS }, // unbounded count: kafkajs warns otherwise
  })
  await producer.connect()
  try {
    for (let start = 0; start < input.count; start += input.per_send) {
      const messages = []
      for (let i = start; i < Math.min(start + input.per_send, input.count); i++) {
        messages.push({ partition: 0, key: `k${i}`, value: `idempotent-${i}` })
      }
      emitSent(await producer.send({ topic: input.topic, acks: -1, messages }))
    }
  } finally {
    await producer.disconnect()
  }
}

// -- group: one member of a consumer group, committing after each batch, until SIGTERM -------

function assignmentOf(payload, topic) {
  return [...(payload.payload.memberAssignment[topic] || [])].sort((a, b) => a - b)
}

async function group(kafka, input) {
  const consumer = kafka.consumer({
    groupId: input.group,
    sessionTimeout: input.session_ms,
    heartbeatInterval: input.heartbeat_ms,
    rebalanceTimeout: input.rebalance_ms,
    maxWaitTimeInMs: 200,
  })
  consumer.on(consumer.events.GROUP_JOIN, e => emit('assignment', { partitions: assignmentOf(e, input.topic) }))
  consumer.on(consumer.events.CRASH, e => emit('crash', { error: String(e.payload.error) }))
  await consumer.connect()
  await consumer.subscribe({ topics: [input.topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      const offsets = batch.messages.map(m => Number(m.offset))
      if (offsets.length === 0) return
      emit('batch', { partition: batch.partition, offsets })
      const next = String(Math.max(...offsets) + 1)
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
      emit('committed', { partition: batch.partition, offset: Number(next) })
      await heartbeat()
    },
  })
  emit('running', {})
  await new Promise(resolve => process.once('SIGTERM', resolve))
  await consumer.disconnect()
  emit('left', {})
}

// -- groups: the admin client's view of the group step's group -----------------------------

async function describeGroup(admin, groupId) {
  const { groups } = await admin.describeGroups([groupId])
  for (const g of groups) {
    emit('described', {
      group: g.groupId, state: g.state, protocol_type: g.protocolType, protocol: g.protocol, error_code: g.errorCode,
      members: g.members.map(m => ({
        client_id: m.clientId,
        assignment: m.memberAssignment.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment : {},
      })),
    })
  }
}

async function emitOffsets(admin, groupId, topic) {
  for (const t of await admin.fetchOffsets({ groupId, topics: [topic] })) {
    emit('offsets', { topic: t.topic, partitions: t.partitions.map(p => ({ partition: p.partition, offset: Number(p.offset) })) })
  }
}

async function emitGroups(admin) {
  const { groups } = await admin.listGroups()
  emit('groups', { groups: groups.map(g => ({ group: g.groupId, protocol_type: g.protocolType })) })
}

/** With members running (live) the group is described and listed; once empty, its offsets set and it is deleted. */
async function groups(kafka, input) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    await describeGroup(admin, input.group)
    await emitGroups(admin)
    await emitOffsets(admin, input.group, input.topic)
    if (input.live) {
      await attempt('delete a live group', () => admin.deleteGroups([input.group]))
      await attempt('set offsets of a live group', () => admin.setOffsets({
        groupId: input.group, topic: input.topic, partitions: [{ partition: 0, offset: '0' }] }))
      return
    }
    await admin.setOffsets({ groupId: input.group, topic: input.topic, partitions: input.set })
    await emitOffsets(admin, input.group, input.topic)
    const deleted = await admin.deleteGroups([input.group])
    emit('deleted', { groups: deleted.map(d => ({ group: d.groupId, error_code: d.errorCode })) })
    await emitGroups(admin)
  } finally {
    await admin.disconnect()
  }
}

// -- times: offsets for times (and the log start after DeleteRecords) ------------------------

async function times(kafka, input) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = await admin.fetchTopicOffsets(input.topic)
    emit('ends', { partitions: ends.map(p => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) })) })
    for (const timestamp of input.timestamps) {
      const found = await admin.fetchTopicOffsetsByTimestamp(input.topic, timestamp)
      emit('offsets', { timestamp, partitions: found.map(p => ({ partition: p.partition, offset: Number(p.offset) })) })
    }
    await admin.deleteTopicRecords({ topic: input.topic, partitions: input.delete_before })
    emit('ends', { partitions: (await admin.fetchTopicOffsets(input.topic)).map(p => (
      { partition: p.partition, low: Number(p.low), high: Number(p.high) })) })
  } finally {
    await admin.disconnect()
  }
}

// -- admin: create, describe, grow, alter configs, cluster, delete --------------------------

async function attempt(what, action) {
  try {
    return await action()
  } catch (e) {
    emit('error', { what, name: e.name, type: e.type || null, message: e.message,
                    errors: (e.errors || e.groups || []).map(x => (x.error && x.error.type) || x.type || x.message) })
    return undefined
  }
}

function emitConfigs(resources) {
  for (const r of resources) {
    emit('configs', {
      type: r.resourceType, name: r.resourceName, error_code: r.errorCode,
      entries: Object.fromEntries(r.configEntries.map(c => [c.configName, { value: c.configValue, is_default: c.isDefault }])),
    })
  }
}

async function describeTopic(admin, topic) {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
  for (const t of topics) {
    emit('metadata', {
      topic: t.name,
      partitions: t.partitions.map(p => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas,
                                            isr: p.isr, error_code: p.partitionErrorCode })),
    })
  }
  const configs = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] })
  emitConfigs(configs.resources)
}

async function adminStep(kafka, input) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const topic = { topic: input.topic, numPartitions: input.partitions, replicationFactor: input.replication,
                    configEntries: Object.entries(input.configs).map(([name, value]) => ({ name, value })) }
    emit('created', { topic: input.topic, created: await admin.createTopics({ topics: [topic], waitForLeaders: true }) })
    emit('created', { topic: input.topic, created: await attempt('create again', () => admin.createTopics({ topics: [topic] })) })
    await attempt('bad replication factor', () => admin.createTopics({
      topics: [{ topic: `${input.topic}-rf`, numPartitions: 1, replicationFactor: input.too_many_replicas }] }))
    await describeTopic(admin, input.topic)
    await admin.createPartitions({ topicPartitions: [{ topic: input.topic, count: input.grow_to }] })
    await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: input.topic,
                                             configEntries: Object.entries(input.altered).map(([name, value]) => ({ name, value })) }] })
    await describeTopic(admin, input.topic)
    const cluster = await admin.describeCluster()
    emitConfigs((await admin.describeConfigs({ resources: [
      { type: ConfigResourceTypes.BROKER, name: String(cluster.brokers[0].nodeId), configNames: input.broker_configs }] })).resources)
    emit('cluster', { cluster_id: cluster.clusterId, controller: cluster.controller,
                      brokers: cluster.brokers.map(b => ({ node_id: b.nodeId, host: b.host, port: b.port })) })
    emit('topics', { names: (await admin.listTopics()).sort() })
    await admin.deleteTopics({ topics: [input.topic] })
    emit('deleted', { topic: input.topic })
    emit('topics', { names: (await admin.listTopics()).sort() })
  } finally {
    await admin.disconnect()
  }
}

const STEPS = { records, idempotent, group, groups, times, admin: adminStep }

async function main() {
  const [step, bootstrap] = process.argv.slice(2)
  if (!STEPS[step] || !bootstrap) {
    process.stderr.write(`usage: node scenario.js {${Object.keys(STEPS).join('|')}} BOOTSTRAP < input.json\n`)
    process.exit(2)
  }
  const input = await readInput()
  await STEPS[step](client(bootstrap, `kavka-js-${step}`), input)
  emit('done', { step })
}

main().catch(e => {
  emit('failed', { name: e.name, type: e.type || null, message: e.message })
  process.stderr.write(`${e.stack}\n`)
  process.exit(1)
})
