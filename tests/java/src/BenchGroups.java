import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Group coordinator benchmark, run by scripts/bench-groups against Kafka and Runnel in turn.
 *
 *   BenchGroups BOOTSTRAP join N      time from the N-th member joining until all N hold their new assignment
 *   BenchGroups BOOTSTRAP commit N S  OffsetCommit throughput of N consumers committing for S seconds
 *
 * Prints one line: "join N <ms>" or "commit N <commits per second>".
 */
public class BenchGroups {
    static Properties props(String bootstrap, String group) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("session.timeout.ms", "10000");
        p.put("heartbeat.interval.ms", "200");
        p.put("partition.assignment.strategy", "org.apache.kafka.clients.consumer.RangeAssignor");
        return p;
    }

    /** A consumer polling on its own thread, publishing its current assignment. */
    static final class Member implements Runnable {
        final KafkaConsumer<byte[], byte[]> consumer;
        final String topic;
        final AtomicReference<Set<TopicPartition>> assigned = new AtomicReference<>(Set.of());
        volatile boolean running = true;

        Member(String bootstrap, String group, String topic) {
            this.consumer = new KafkaConsumer<>(props(bootstrap, group));
            this.topic = topic;
        }

        public void run() {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> p) { assigned.set(Set.of()); }
                public void onPartitionsAssigned(Collection<TopicPartition> p) { assigned.set(Set.copyOf(p)); }
            });
            while (running) consumer.poll(Duration.ofMillis(20));
            consumer.close(Duration.ofSeconds(5));
        }
    }

    /** True when the members together hold every partition exactly once. */
    static boolean settled(List<Member> members, int partitions) {
        Set<TopicPartition> all = new HashSet<>();
        int count = 0;
        for (Member m : members) {
            Set<TopicPartition> a = m.assigned.get();
            if (a.isEmpty()) return false;
            all.addAll(a);
            count += a.size();
        }
        return all.size() == partitions && count == partitions;
    }

    static void awaitSettled(List<Member> members, int partitions, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!settled(members, partitions)) {
            if (System.currentTimeMillis() > deadline) throw new TimeoutException("group did not settle");
            Thread.sleep(1);
        }
    }

    static void join(String bootstrap, int n) throws Exception {
        String topic = "bench-join-" + n + "-" + System.nanoTime();
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, n, (short) 1))).all().get();
        }
        String group = "bench-join-" + UUID.randomUUID();
        ExecutorService pool = Executors.newCachedThreadPool();
        List<Member> members = new ArrayList<>();
        for (int i = 0; i < n - 1; i++) {
            Member m = new Member(bootstrap, group, topic);
            members.add(m);
            pool.submit(m);
        }
        if (!members.isEmpty()) awaitSettled(members, n, 120_000);
        Member last = new Member(bootstrap, group, topic);
        members.add(last);
        long start = System.nanoTime();
        pool.submit(last);
        // Settled with n members of one partition each: everyone holds the new assignment.
        awaitSettled(members, n, 120_000);
        while (members.stream().anyMatch(m -> m.assigned.get().size() != 1)) Thread.sleep(1);
        long ms = (System.nanoTime() - start) / 1_000_000;
        System.out.println("join " + n + " " + ms);
        for (Member m : members) m.running = false;
        pool.shutdown();
        pool.awaitTermination(60, TimeUnit.SECONDS);
    }

    static void commit(String bootstrap, int n, int seconds) throws Exception {
        String topic = "bench-commit-" + System.nanoTime();
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, n, (short) 1))).all().get();
        }
        String group = "bench-commit-" + UUID.randomUUID();
        AtomicLong commits = new AtomicLong();
        AtomicBoolean measuring = new AtomicBoolean(false);
        AtomicBoolean stop = new AtomicBoolean(false);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            final int partition = i;
            Thread t = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props(bootstrap, group))) {
                    TopicPartition tp = new TopicPartition(topic, partition);
                    c.assign(List.of(tp));
                    long offset = 0;
                    while (!stop.get()) {
                        c.commitSync(Map.of(tp, new OffsetAndMetadata(++offset)));
                        if (measuring.get()) commits.incrementAndGet();
                    }
                }
            });
            threads.add(t);
            t.start();
        }
        Thread.sleep(2000); // warm-up: connections, coordinator lookup, JIT
        measuring.set(true);
        long start = System.nanoTime();
        Thread.sleep(seconds * 1000L);
        measuring.set(false);
        double elapsed = (System.nanoTime() - start) / 1e9;
        stop.set(true);
        for (Thread t : threads) t.join();
        System.out.printf("commit %d %.0f%n", n, commits.get() / elapsed);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        switch (args[1]) {
            case "join" -> join(bootstrap, Integer.parseInt(args[2]));
            case "commit" -> commit(bootstrap, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            default -> throw new IllegalArgumentException(args[1]);
        }
        System.exit(0);
    }
}
