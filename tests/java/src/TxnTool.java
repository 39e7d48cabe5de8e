// Transactions with the real Java client (kafka-clients 4.3.1), for the end-to-end exactly-once tests
// (tests/python/test_txn_java.py, test_txn_crash.py; txn_helpers.py compiles it once per run with javac). One
// program, several modes; every result is one flushed stdout line of space-separated fields (values never contain
// spaces), so the Python side asserts on them.
//
//   java -cp 'tests/java/target/lib/*' tests/java/src/TxnTool.java MODE HOST:PORT ARGS...
//
// modes:
//   txns BOOT TOPIC TXID SPEC       one producer runs the transactions of SPEC in order, e.g. "C10,A5,C4": commit a
//                                   transaction with 10 records on every partition, abort one with 5 on every
//                                   partition, commit one with 4. Records are sent to explicit partitions with value
//                                   t<I>-p<P>-r<J>.  Prints  SENT I P OFFSET VALUE  (from the send callback; aborted
//                                   records are written too) and  DONE I COMMIT|ABORT  once commit/abort returned.
//   consume BOOT TOPIC ISOLATION [TIMEOUT_S]
//                                   assign() every partition from the beginning with isolation.level ISOLATION
//                                   (read_committed|read_uncommitted), read until position >= endOffsets (which are
//                                   the LSO under read_committed). Prints  END P OFFSET,  REC P OFFSET VALUE,
//                                   POS P POSITION,  CONSUMED N.  Exit 3 (with TIMEOUT lines) if the end is not reached.
//   ctp BOOT IN OUT GROUP TXID N M  consume-transform-produce with sendOffsetsToTransaction(offsets,
//                                   consumer.groupMetadata()): produces N input records (in-<I>, partition I % parts),
//                                   consumes them in group GROUP (subscribe, read_committed) and writes out-in-<I> to
//                                   the same partition of OUT in one transaction that commits; produces M more, does
//                                   the same in a transaction that aborts, seeks back to the committed offsets and
//                                   redoes it in one that commits. Around each end prints
//                                     GROUPOFFSETS LABEL P=OFF,...|-     Admin listConsumerGroupOffsets
//                                     STABLE LABEL P=OFF,...|-|EXC:<class>  the same with requireStable(true), 3 s timeout
//                                   with LABEL one of commit1-open, commit1-done, abort-open, abort-done,
//                                   commit2-open, commit2-done (each -done waits, up to 15 s, until the stable view
//                                   has every partition: Kafka settles offsets after EndTxn returns; UNSETTLED GROUP
//                                   if it never does); also  SEEK P OFF  and  CTP DONE.
//   fence BOOT TOPIC TXID send|commit
//                                   producer A opens a transaction and sends a-0 to partition 0; producer B (same
//                                   TXID) initializes; A then (variant send) sends a-1 and commits, or (variant commit)
//                                   only commits; B commits a transaction with b-0. Prints  A SENT,  B INIT,
//                                   A SEND2 OK|<exception class> (variant send),  A COMMIT OK|<exception class>,
//                                   B COMMITTED.
//   features BOOT                   Admin describeFeatures: FEATURE NAME MIN MAX (finalized levels).
//   txquery BOOT KNOWN_TXID UNKNOWN_TXID
//                                   Admin queries: DESCRIBE_UNKNOWN <state|exception class>, then whether
//                                   listTransactions with a filter lists KNOWN_TXID (YES|NO): LIST_ALL,
//                                   LIST_STATE_<state> for CompleteCommit and Ongoing, LIST_PID (its own producer id),
//                                   LIST_OTHER_PID (another producer id).
//   genfence BOOT TOPIC GROUP TXID  a consumer joins GROUP on TOPIC (which has records); a transaction sends offsets
//                                   with a wrong generation (generation + 5), then with an unknown member id, then
//                                   with the consumer's real metadata, aborting after each failure. Prints
//                                   JOINED GEN,  BADGEN OK|<exception class>,  BADMEMBER OK|<exception class>,
//                                   REAL OK|<exception class>,  GROUPOFFSETS final P=OFF,...
//   hang BOOT TOPIC TXID TIMEOUT_MS N
//                                   transaction.timeout.ms=TIMEOUT_MS; opens a transaction, sends N records (h-<J>) to
//                                   partition 0, flushes, prints SENT lines and OPEN, then sleeps (to be killed).
//   loop BOOT TOPIC TXID MAX_TXNS TIMEOUT_MS [PREFIX [HOLD_AT]]
//                                   transactions in a loop, each with 6 records (<PREFIX><I>-<J>, default prefix x,
//                                   partition J % parts); every third (I % 3 == 2) is aborted. Prints  BEGIN I
//                                   then  COMMITTED I | ABORTED I  as the commit/abort returns; ERROR I <class> on
//                                   failure (exit 2); LOOP DONE at the end.
//                                   With HOLD_AT, transaction HOLD_AT flushes its records, prints HOLD I and waits
//                                   (to be killed with it open).
//   txstate BOOT WAIT_S [TOPIC]     Admin listTransactions + describeTransactions (and describeProducers on TOPIC's
//                                   partitions) until no transaction is Ongoing or Prepare* or WAIT_S passed. Prints
//                                   TXN ID STATE EPOCH TIMEOUT_MS PARTS, PRODUCER P PID EPOCH TXN_START_OFFSET, then
//                                   RESOLVED or UNRESOLVED.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnTool {
    static final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    static synchronized void emit(String line) {
        out.println(line);
    }

    static String cls(Throwable t) {
        if (t instanceof ExecutionException && t.getCause() != null) t = t.getCause();
        return t.getClass().getSimpleName();
    }

    static Properties producerProps(String boot, String txid, Map<String, String> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        if (txid != null) p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.putAll(extra);
        return p;
    }

    static Properties consumerProps(String boot, String group, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return p;
    }

    static Admin admin(String boot) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(p);
    }

    static int partitionCount(String boot, String topic) throws Exception {
        try (Admin a = admin(boot)) {
            return a.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS).get(topic)
                    .partitions().size();
        }
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (args.length < 2) {
            System.err.println("usage: TxnTool MODE HOST:PORT ARGS... (see the comment at the top)");
            System.exit(64);
        }
        String mode = args[0];
        String[] a = Arrays.copyOfRange(args, 1, args.length);
        switch (mode) {
            case "txns" -> txns(a[0], a[1], a[2], a[3]);
            case "consume" -> consume(a[0], a[1], a[2], a.length > 3 ? Integer.parseInt(a[3]) : 60);
            case "ctp" -> ctp(a[0], a[1], a[2], a[3], a[4], Integer.parseInt(a[5]), Integer.parseInt(a[6]));
            case "fence" -> fence(a[0], a[1], a[2], a[3]);
            case "features" -> features(a[0]);
            case "genfence" -> genfence(a[0], a[1], a[2], a[3]);
            case "txquery" -> txquery(a[0], a[1], a[2]);
            case "hang" -> hang(a[0], a[1], a[2], a[3], Integer.parseInt(a[4]));
            case "loop" -> loop(a[0], a[1], a[2], Integer.parseInt(a[3]), a[4], a.length > 5 ? a[5] : "x",
                    a.length > 6 ? Integer.parseInt(a[6]) : -1);
            case "txstate" -> txstate(a[0], Integer.parseInt(a[1]), a.length > 2 ? a[2] : null);
            default -> {
                System.err.println("unknown mode " + mode);
                System.exit(64);
            }
        }
        System.exit(0);
    }

    // ------------------------------------------------------------------------------------------------ txns

    static void txns(String boot, String topic, String txid, String spec) throws Exception {
        int parts = partitionCount(boot, topic);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, txid, Map.of()))) {
            p.initTransactions();
            String[] steps = spec.split(",");
            for (int i = 0; i < steps.length; i++) {
                boolean commit = steps[i].charAt(0) == 'C';
                int n = Integer.parseInt(steps[i].substring(1));
                p.beginTransaction();
                for (int j = 0; j < n; j++) {
                    for (int part = 0; part < parts; part++) {
                        final int ti = i, tp = part;
                        String v = "t" + i + "-p" + part + "-r" + j;
                        p.send(new ProducerRecord<>(topic, part, null, v), (m, e) -> {
                            if (e == null) emit("SENT " + ti + " " + tp + " " + m.offset() + " " + v);
                            else emit("SENDFAIL " + ti + " " + v + " " + cls(e));
                        });
                    }
                }
                p.flush();
                if (commit) p.commitTransaction();
                else p.abortTransaction();
                emit("DONE " + i + " " + (commit ? "COMMIT" : "ABORT"));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ consume

    static void consume(String boot, String topic, String isolation, int timeoutS) throws Exception {
        int parts = partitionCount(boot, topic);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(boot, null, isolation))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < parts; i++) tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofSeconds(20));
            for (TopicPartition tp : tps) emit("END " + tp.partition() + " " + ends.get(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutS);
            long n = 0;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) if (c.position(tp) < ends.get(tp)) done = false;
                if (done) break;
                if (System.nanoTime() > deadline) {
                    for (TopicPartition tp : tps)
                        emit("TIMEOUT " + tp.partition() + " position " + c.position(tp) + " end " + ends.get(tp));
                    System.exit(3);
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    emit("REC " + r.partition() + " " + r.offset() + " " + r.value());
                    n++;
                }
            }
            for (TopicPartition tp : tps) emit("POS " + tp.partition() + " " + c.position(tp));
            emit("CONSUMED " + n);
        }
    }

    // ------------------------------------------------------------------------------------------------ ctp

    static String fmt(Map<TopicPartition, OffsetAndMetadata> m, String topic) {
        if (m == null) return "-";
        String s = m.entrySet().stream().filter(e -> e.getKey().topic().equals(topic) && e.getValue() != null)
                .sorted(Comparator.comparingInt(e -> e.getKey().partition()))
                .map(e -> e.getKey().partition() + "=" + e.getValue().offset()).collect(Collectors.joining(","));
        return s.isEmpty() ? "-" : s;
    }

    // After commit/abort returned, Kafka settles the group's offsets asynchronously (the coordinator answers EndTxn
    // once PrepareCommit/PrepareAbort is durable and writes the markers after): wait until the stable view shows
    // offsets for every partition of the topic, or 15 s.
    static void awaitStable(Admin admin, String group, String topic, int parts) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            ListConsumerGroupOffsetsOptions o = new ListConsumerGroupOffsetsOptions().requireStable(true);
            o.timeoutMs(3000);
            try {
                Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group, o)
                        .partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
                if (m.keySet().stream().filter(tp -> tp.topic().equals(topic) && m.get(tp) != null).count() >= parts)
                    return;
            } catch (Exception e) {
                // retried until the deadline
            }
            Thread.sleep(100);
        }
        emit("UNSETTLED " + group);
    }

    static void groupOffsets(Admin admin, String group, String topic, String label) throws Exception {
        emit("GROUPOFFSETS " + label + " " + fmt(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                .get(15, TimeUnit.SECONDS), topic));
        String stable;
        try {
            ListConsumerGroupOffsetsOptions o = new ListConsumerGroupOffsetsOptions().requireStable(true);
            o.timeoutMs(3000);
            stable = fmt(admin.listConsumerGroupOffsets(group, o).partitionsToOffsetAndMetadata()
                    .get(10, TimeUnit.SECONDS), topic);
        } catch (Exception e) {
            stable = "EXC:" + cls(e);
        }
        emit("STABLE " + label + " " + stable);
    }

    static List<ConsumerRecord<String, String>> pollCount(KafkaConsumer<String, String> c, int count) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (got.size() < count) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("polled " + got.size() + " of " + count);
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(r);
        }
        if (got.size() != count) throw new IllegalStateException("polled " + got.size() + " records, wanted " + count);
        return got;
    }

    static void produceInput(String boot, String in, int parts, int from, int to) throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, null, Map.of()))) {
            for (int i = from; i < to; i++) p.send(new ProducerRecord<>(in, i % parts, null, "in-" + i)).get();
        }
    }

    static void transform(KafkaProducer<String, String> p, KafkaConsumer<String, String> c, Admin admin, String group,
                          String in, String outTopic, List<ConsumerRecord<String, String>> recs, String label,
                          boolean commit) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        p.beginTransaction();
        for (ConsumerRecord<String, String> r : recs) {
            p.send(new ProducerRecord<>(outTopic, r.partition(), null, "out-" + r.value()));
            offsets.merge(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1),
                    (x, y) -> x.offset() >= y.offset() ? x : y);
        }
        p.sendOffsetsToTransaction(offsets, c.groupMetadata());
        p.flush();
        emit("TXNOFFSETS " + label + " " + fmt(offsets, in));
        groupOffsets(admin, group, in, label + "-open");
        if (commit) p.commitTransaction();
        else p.abortTransaction();
        awaitStable(admin, group, in, c.assignment().size());
        groupOffsets(admin, group, in, label + "-done");
    }

    static void ctp(String boot, String in, String outTopic, String group, String txid, int n, int m) throws Exception {
        int parts = partitionCount(boot, in);
        produceInput(boot, in, parts, 0, n);
        try (Admin admin = admin(boot);
             KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(boot, group, "read_committed"));
             KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, txid, Map.of()))) {
            p.initTransactions();
            c.subscribe(List.of(in));
            transform(p, c, admin, group, in, outTopic, pollCount(c, n), "commit1", true);
            produceInput(boot, in, parts, n, n + m);
            List<ConsumerRecord<String, String>> second = pollCount(c, m);
            transform(p, c, admin, group, in, outTopic, second, "abort", false);
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(c.assignment(), Duration.ofSeconds(15));
            for (TopicPartition tp : c.assignment()) {
                OffsetAndMetadata om = committed.get(tp);
                long off = om == null ? 0 : om.offset();
                c.seek(tp, off);
                emit("SEEK " + tp.partition() + " " + off);
            }
            transform(p, c, admin, group, in, outTopic, pollCount(c, m), "commit2", true);
            emit("GENERATION " + c.groupMetadata().generationId());
        }
        emit("CTP DONE");
    }

    // ------------------------------------------------------------------------------------------------ fence

    static void fence(String boot, String topic, String txid, String variant) throws Exception {
        KafkaProducer<String, String> a = new KafkaProducer<>(producerProps(boot, txid, Map.of()));
        a.initTransactions();
        a.beginTransaction();
        a.send(new ProducerRecord<>(topic, 0, null, "a-0")).get(20, TimeUnit.SECONDS);
        emit("A SENT");
        try (KafkaProducer<String, String> b = new KafkaProducer<>(producerProps(boot, txid, Map.of()))) {
            b.initTransactions();
            emit("B INIT");
            String r;
            if (variant.equals("send")) {
                try {
                    a.send(new ProducerRecord<>(topic, 0, null, "a-1")).get(20, TimeUnit.SECONDS);
                    r = "OK";
                } catch (Exception e) {
                    r = cls(e);
                }
                emit("A SEND2 " + r);
            }
            try {
                a.commitTransaction();
                r = "OK";
            } catch (Exception e) {
                r = cls(e);
            }
            emit("A COMMIT " + r);
            a.close(Duration.ofSeconds(5));
            b.beginTransaction();
            b.send(new ProducerRecord<>(topic, 0, null, "b-0"));
            b.commitTransaction();
            emit("B COMMITTED");
        }
    }

    static void features(String boot) throws Exception {
        try (Admin admin = admin(boot)) {
            FeatureMetadata f = admin.describeFeatures().featureMetadata().get(15, TimeUnit.SECONDS);
            f.finalizedFeatures().forEach((k, v) -> emit("FEATURE " + k + " " + v.minVersionLevel() + " "
                    + v.maxVersionLevel()));
        }
    }

    static String tryOffsets(KafkaProducer<String, String> p, String topic, ConsumerGroupMetadata md) {
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, null, "gen-" + md.generationId()));
        try {
            p.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)), md);
            p.commitTransaction();
            return "OK";
        } catch (Exception e) {
            p.abortTransaction();
            return cls(e);
        }
    }

    static void genfence(String boot, String topic, String group, String txid) throws Exception {
        try (Admin admin = admin(boot);
             KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(boot, group, "read_committed"));
             KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, txid, Map.of()))) {
            p.initTransactions();
            c.subscribe(List.of(topic));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (c.assignment().isEmpty() || c.groupMetadata().generationId() < 1) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("no assignment");
                c.poll(Duration.ofMillis(100));
            }
            ConsumerGroupMetadata md = c.groupMetadata();
            emit("JOINED " + md.generationId());
            emit("BADGEN " + tryOffsets(p, topic, new ConsumerGroupMetadata(group, md.generationId() + 5,
                    md.memberId(), md.groupInstanceId())));
            emit("BADMEMBER " + tryOffsets(p, topic, new ConsumerGroupMetadata(group, md.generationId(),
                    "no-such-member", md.groupInstanceId())));
            emit("REAL " + tryOffsets(p, topic, c.groupMetadata()));
            awaitStable(admin, group, topic, 1);
            emit("GROUPOFFSETS final " + fmt(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                    .get(15, TimeUnit.SECONDS), topic));
        }
    }

    static String listed(Admin admin, ListTransactionsOptions o, String txid) throws Exception {
        return admin.listTransactions(o).all().get(15, TimeUnit.SECONDS).stream()
                .anyMatch(l -> l.transactionalId().equals(txid)) ? "YES" : "NO";
    }

    static void txquery(String boot, String known, String unknown) throws Exception {
        try (Admin admin = admin(boot)) {
            String r;
            try {
                r = admin.describeTransactions(List.of(unknown)).all().get(15, TimeUnit.SECONDS).get(unknown).state()
                        .toString();
            } catch (Exception e) {
                r = cls(e);
            }
            emit("DESCRIBE_UNKNOWN " + r);
            long pid = admin.describeTransactions(List.of(known)).all().get(15, TimeUnit.SECONDS).get(known)
                    .producerId();
            emit("LIST_ALL " + listed(admin, new ListTransactionsOptions(), known));
            for (TransactionState st : List.of(TransactionState.COMPLETE_COMMIT, TransactionState.ONGOING))
                emit("LIST_STATE_" + st + " " + listed(admin, new ListTransactionsOptions().filterStates(List.of(st)),
                        known));
            emit("LIST_PID " + listed(admin, new ListTransactionsOptions().filterProducerIds(Set.of(pid)), known));
            emit("LIST_OTHER_PID " + listed(admin, new ListTransactionsOptions().filterProducerIds(Set.of(pid + 1000)),
                    known));
        }
    }

    // ------------------------------------------------------------------------------------------------ hang

    static void hang(String boot, String topic, String txid, String timeoutMs, int n) throws Exception {
        KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, txid,
                Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs)));
        p.initTransactions();
        p.beginTransaction();
        for (int j = 0; j < n; j++) {
            String v = "h-" + j;
            p.send(new ProducerRecord<>(topic, 0, null, v), (m, e) -> {
                if (e == null) emit("SENT 0 0 " + m.offset() + " " + v);
                else emit("SENDFAIL 0 " + v + " " + cls(e));
            });
        }
        p.flush();
        emit("OPEN");
        Thread.sleep(300_000);
        System.exit(3);
    }

    // ------------------------------------------------------------------------------------------------ loop

    static void loop(String boot, String topic, String txid, int max, String timeoutMs, String prefix, int holdAt)
            throws Exception {
        int parts = partitionCount(boot, topic);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(boot, txid,
                Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs)))) {
            p.initTransactions();
            for (int i = 0; i < max; i++) {
                try {
                    p.beginTransaction();
                    emit("BEGIN " + i);
                    for (int j = 0; j < 6; j++) p.send(new ProducerRecord<>(topic, j % parts, null, prefix + i + "-" + j));
                    if (i == holdAt) {
                        p.flush();
                        emit("HOLD " + i);
                        Thread.sleep(120_000);  // to be killed with this transaction open
                    }
                    if (i % 3 == 2) {
                        p.abortTransaction();
                        emit("ABORTED " + i);
                    } else {
                        p.commitTransaction();
                        emit("COMMITTED " + i);
                    }
                } catch (Exception e) {
                    emit("ERROR " + i + " " + cls(e) + " " + String.valueOf(e.getMessage()).replace('\n', ' '));
                    System.exit(2);
                }
            }
        }
        emit("LOOP DONE");
    }

    // ------------------------------------------------------------------------------------------------ txstate

    static final Set<TransactionState> OPEN = EnumSet.of(TransactionState.ONGOING, TransactionState.PREPARE_COMMIT,
            TransactionState.PREPARE_ABORT, TransactionState.PREPARE_EPOCH_FENCE);

    static void txstate(String boot, int waitS, String topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(waitS);
        try (Admin admin = admin(boot)) {
            while (true) {
                List<String> lines = new ArrayList<>();
                boolean open = false;
                Collection<TransactionListing> listings = admin.listTransactions().all().get(15, TimeUnit.SECONDS);
                List<String> ids = listings.stream().map(TransactionListing::transactionalId).sorted().toList();
                for (TransactionListing l : listings) {
                    lines.add("LISTED " + l.transactionalId() + " " + l.state() + " " + l.producerId());
                    if (OPEN.contains(l.state())) open = true;
                }
                if (!ids.isEmpty()) {
                    Map<String, TransactionDescription> d = admin.describeTransactions(ids).all()
                            .get(15, TimeUnit.SECONDS);
                    for (String id : ids) {
                        TransactionDescription t = d.get(id);
                        String ps = t.topicPartitions().stream().map(TopicPartition::toString).sorted()
                                .collect(Collectors.joining(","));
                        lines.add("TXN " + id + " " + t.state() + " " + t.producerEpoch() + " "
                                + t.transactionTimeoutMs() + " " + (ps.isEmpty() ? "-" : ps));
                        if (OPEN.contains(t.state())) open = true;
                    }
                }
                if (topic != null) {
                    int parts = partitionCount(boot, topic);
                    List<TopicPartition> tps = new ArrayList<>();
                    for (int i = 0; i < parts; i++) tps.add(new TopicPartition(topic, i));
                    Map<TopicPartition, DescribeProducersResult.PartitionProducerState> st =
                            admin.describeProducers(tps).all().get(15, TimeUnit.SECONDS);
                    for (TopicPartition tp : tps) {
                        for (ProducerState s : st.get(tp).activeProducers()) {
                            long start = s.currentTransactionStartOffset().orElse(-1L);
                            lines.add("PRODUCER " + tp.partition() + " " + s.producerId() + " " + s.producerEpoch()
                                    + " " + start);
                            if (start >= 0) open = true;
                        }
                    }
                }
                if (!open || System.nanoTime() > deadline) {
                    for (String l : lines) emit(l);
                    emit(open ? "UNRESOLVED" : "RESOLVED");
                    return;
                }
                Thread.sleep(250);
            }
        }
    }
}
