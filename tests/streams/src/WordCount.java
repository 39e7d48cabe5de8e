// Kafka Streams (4.3.1) word count with processing.guarantee=exactly_once_v2, for the end-to-end exactly-once test
// (tests/python/test_txn_streams.py). Reads lines (String values) from INPUT, splits them on whitespace, counts
// words in a state store (record cache off, so every input word yields one output record) and writes
// word -> count (String key, Long value, 8 bytes big-endian) to OUTPUT.
//
//   java -cp 'tests/streams/target/lib/*' tests/streams/src/WordCount.java HOST:PORT APP_ID INPUT OUTPUT STATE_DIR
//
// stdout, one flushed line each:  STATE <new state>  on every state change (RUNNING once processing),
// UNCAUGHT <class> <message>  if a stream thread dies (the client then shuts down and the program exits 2).
// Runs until killed or until its standard input ends (then closes cleanly, prints CLOSED, exits 0).

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

public class WordCount {
    static final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    static volatile boolean uncaught = false;

    static synchronized void emit(String line) {
        out.println(line);
    }

    public static void main(String[] args) throws Exception {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null)  // -D... on the command line wins
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        if (args.length != 5) {
            System.err.println("usage: WordCount HOST:PORT APP_ID INPUT OUTPUT STATE_DIR");
            System.exit(64);
        }
        String input = args[2], output = args[3];

        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        // A restarted instance must not wait long for the killed one in the rebalance: Kafka drops the dead member
        // when its session (6 s) expires; a broker that instead waits out the rebalance timeout
        // (max.poll.interval.ms, 300 s by default) is bounded here to 20 s.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "6000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG), "20000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "500");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), "100");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), "5");

        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\s+")))
                .filter((k, w) -> !w.isEmpty())
                .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch dead = new CountDownLatch(1);
        streams.setStateListener((n, o) -> {
            emit("STATE " + n);
            if (n == KafkaStreams.State.ERROR || n == KafkaStreams.State.NOT_RUNNING) dead.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            uncaught = true;
            emit("UNCAUGHT " + e.getClass().getSimpleName() + " " + String.valueOf(e.getMessage()).replace('\n', ' '));
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // ignore input; end of input means stop
                }
            } catch (Exception ignored) {
            }
            dead.countDown();
        });
        stdin.setDaemon(true);
        stdin.start();

        dead.await();
        boolean failed = uncaught || streams.state() == KafkaStreams.State.ERROR
                || streams.state() == KafkaStreams.State.PENDING_ERROR;
        streams.close(Duration.ofSeconds(30));
        emit("CLOSED");
        System.exit(failed ? 2 : 0);
    }
}
