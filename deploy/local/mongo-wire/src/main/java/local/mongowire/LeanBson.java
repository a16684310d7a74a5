package local.mongowire;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import de.bwaldvogel.mongo.wire.BsonConstants;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;

/**
 * BSON encoding byte for byte as mongo-java-server's {@link BsonEncoder}, without its garbage.
 *
 * <p>The library's encoder allocates a byte array for every key and string and a whole map for
 * every array: about the size of the data in short-lived objects. A snapshot encodes all the data
 * (~90 MB at the rate-10 bench's end) in a second or two, and that garbage forced a young GC into
 * nearly every snapshot, pausing every command (measured: the slowest write in each snapshot
 * window matched the GC pause in it). Here keys and strings are written straight into the buffer
 * and arrays element by element; every other type goes to the library's own code. Strings with a
 * surrogate go the library's way too, so that an unpaired one is encoded exactly as it does.
 */
final class LeanBson {
    private static final String[] INDEXES = new String[1024];

    static {
        for (int i = 0; i < INDEXES.length; i++) {
            INDEXES[i] = Integer.toString(i);
        }
    }

    private LeanBson() {}

    static void encodeDocument(Map<String, ?> document, ByteBuf out) {
        int start = out.writerIndex();
        out.writeIntLE(0);
        for (Map.Entry<String, ?> entry : document.entrySet()) {
            encodeValue(entry.getKey(), entry.getValue(), out);
        }
        out.writeByte(BsonConstants.TERMINATING_BYTE);
        out.setIntLE(start, out.writerIndex() - start);
    }

    /** The document whose top-level fields are KEYS/VALUES[from, to), in that order. */
    static void encodeFields(String[] keys, Object[] values, int from, int to, ByteBuf out) {
        int start = out.writerIndex();
        out.writeIntLE(0);
        for (int i = from; i < to; i++) {
            encodeValue(keys[i], values[i], out);
        }
        out.writeByte(BsonConstants.TERMINATING_BYTE);
        out.setIntLE(start, out.writerIndex() - start);
    }

    private static void encodeValue(String key, Object value, ByteBuf out) {
        byte type = BsonEncoder.determineType(value);
        out.writeByte(type);
        writeCString(key, out);
        if (type == BsonConstants.TYPE_UTF8_STRING && !hasSurrogate(value.toString())) {
            int at = out.writerIndex();
            out.writeIntLE(0);
            int length = out.writeCharSequence(value.toString(), StandardCharsets.UTF_8);
            out.writeByte(BsonConstants.STRING_TERMINATION);
            out.setIntLE(at, length + 1);
        } else if (type == BsonConstants.TYPE_EMBEDDED_DOCUMENT) {
            @SuppressWarnings("unchecked")
            Map<String, ?> map = (Map<String, ?>) value;
            encodeDocument(map, out);
        } else if (type == BsonConstants.TYPE_ARRAY && value instanceof List<?> list) {
            int start = out.writerIndex();
            out.writeIntLE(0);
            for (int i = 0; i < list.size(); i++) {
                encodeValue(i < INDEXES.length ? INDEXES[i] : Integer.toString(i), list.get(i), out);
            }
            out.writeByte(BsonConstants.TERMINATING_BYTE);
            out.setIntLE(start, out.writerIndex() - start);
        } else {
            BsonEncoder.encodeValue(type, value, out);
        }
    }

    private static void writeCString(String key, ByteBuf out) {
        if (hasSurrogate(key)) {
            out.writeBytes(key.getBytes(StandardCharsets.UTF_8));  // as the library does
        } else {
            out.writeCharSequence(key, StandardCharsets.UTF_8);
        }
        out.writeByte(BsonConstants.STRING_TERMINATION);
    }

    private static boolean hasSurrogate(String value) {
        for (int i = 0; i < value.length(); i++) {
            if (Character.isSurrogate(value.charAt(i))) {
                return true;
            }
        }
        return false;
    }
}
