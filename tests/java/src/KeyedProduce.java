import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * KeyedProduce BOOTSTRAP TOPIC KEY... : produces one record per key with the Java client's default
 * partitioner and prints "KEY PARTITION" for each acknowledged record.
 */
public class KeyedProduce {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 2; i < args.length; i++) {
                RecordMetadata m = producer.send(new ProducerRecord<>(args[1], args[i], "v")).get();
                System.out.println(args[i] + " " + m.partition());
            }
        }
        System.exit(0);
    }
}
