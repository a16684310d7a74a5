package local.mongowire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * The folder of the journal backend: snapshots and journals, by generation.
 *
 * <p>{@code snapshot-G.bin} holds every document as of the moment journal G was started (or later:
 * it is written while writes go on, see {@link JournaledBackend}); {@code journal-G.log} holds
 * every effect from that moment on. The state is the newest complete snapshot G (none: empty) plus
 * the journals G, G+1, ... replayed in order: replaying an effect the snapshot already holds is
 * harmless, since effects are whole documents, deletions by key and collection drops. A snapshot
 * is written to a temporary file, fsynced, then renamed, so it is complete or absent; files older
 * than it are deleted only after that.
 */
final class Store {
    private static final Logger log = LoggerFactory.getLogger(Store.class);
    static final byte[] SNAPSHOT_MAGIC = "MWSNAP01".getBytes(StandardCharsets.US_ASCII);
    private static final Pattern FILE = Pattern.compile("(snapshot|journal)-(\\d{12})\\.(bin|log)");

    /** Database -> collection -> documents by key, in insertion order. */
    static final class State extends HashMap<String, Map<String, LinkedHashMap<KeyValue, Document>>> {
        private static final long serialVersionUID = 1L;
        long records;
        long bytes;

        void apply(Journal.Record record) {
            records++;
            bytes += record.size;
            switch (record.kind) {
                case Journal.Record.PUT -> collection(record).put(Keys.of(record.collection, record.document), record.document);
                case Journal.Record.DELETE -> collection(record).remove(Keys.of(record.collection, record.document));
                case Journal.Record.DROP -> {
                    Map<String, LinkedHashMap<KeyValue, Document>> collections = get(record.database);
                    if (collections != null) {
                        collections.remove(record.collection);
                    }
                }
                default -> throw new IllegalStateException("unknown record kind " + record.kind);
            }
        }

        private LinkedHashMap<KeyValue, Document> collection(Journal.Record record) {
            return computeIfAbsent(record.database, d -> new HashMap<>())
                .computeIfAbsent(record.collection, c -> new LinkedHashMap<>());
        }
    }

    private final Path dir;
    private long generation;
    private volatile long lastSnapshotBytes;  // read by the commands' threads

    Store(Path dir) throws IOException {
        this.dir = dir;
        Files.createDirectories(dir);
    }

    long lastSnapshotBytes() {
        return lastSnapshotBytes;
    }

    /** Read the newest snapshot and replay the journals after it. */
    State load() throws IOException {
        TreeMap<Long, Path> snapshots = new TreeMap<>();
        TreeMap<Long, Path> journals = new TreeMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                String name = file.getFileName().toString();
                Matcher m = FILE.matcher(name);
                if (name.endsWith(".tmp")) {
                    Files.delete(file);  // a snapshot that was not finished
                } else if (m.matches()) {
                    (m.group(1).equals("snapshot") ? snapshots : journals).put(Long.parseLong(m.group(2)), file);
                }
            }
        }
        State state = new State();
        long base = 0;
        if (!snapshots.isEmpty()) {
            base = snapshots.lastKey();
            Path snapshot = snapshots.lastEntry().getValue();
            readSnapshot(snapshot, state);
            lastSnapshotBytes = Files.size(snapshot);
            log.info("read {}: {} documents, {} MB", snapshot.getFileName(), state.records, mb(lastSnapshotBytes));
        }
        generation = Math.max(base, journals.isEmpty() ? 0 : journals.lastKey());
        for (Map.Entry<Long, Path> journal : journals.entrySet()) {
            if (journal.getKey() >= base) {
                replay(journal.getValue(), state);
            }
        }
        return state;
    }

    private static void readSnapshot(Path file, State state) throws IOException {
        ByteBuf in = map(file);
        checkMagic(file, in, SNAPSHOT_MAGIC);
        long count = 0;
        for (Journal.Record record; (record = Journal.Record.read(in)) != null; ) {
            if (record.kind == Journal.Record.END) {
                long expected = ((Number) record.document.get("records")).longValue();
                if (expected != count || in.isReadable()) {
                    throw new IOException(file + " is damaged: " + count + " records, its end says " + expected);
                }
                return;
            }
            state.apply(record);
            count++;
        }
        // Written to a temporary file, fsynced and renamed: an incomplete one is damage, not a crash.
        throw new IOException(file + " is damaged at byte " + in.readerIndex() + " (it has no end record)");
    }

    private static void replay(Path file, State state) throws IOException {
        ByteBuf in = map(file);
        checkMagic(file, in, Journal.MAGIC);
        long before = state.records;
        while (true) {
            Journal.Record record = Journal.Record.read(in);
            if (record == null) {
                break;
            }
            state.apply(record);
        }
        if (!allZeros(in)) {
            // The last write before a crash, torn: it was never acknowledged. (Zeros: the reserve.)
            log.warn("{}: ignoring the rest from byte {} (an incomplete record, torn by a crash)", file.getFileName(), in.readerIndex());
        }
        log.info("replayed {}: {} effects", file.getFileName(), state.records - before);
    }

    private static boolean allZeros(ByteBuf in) {
        for (int i = in.readerIndex(); i < in.writerIndex(); i++) {
            if (in.getByte(i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static void checkMagic(Path file, ByteBuf in, byte[] magic) throws IOException {
        byte[] head = new byte[Math.min(magic.length, in.readableBytes())];
        in.readBytes(head);
        if (!Arrays.equals(head, magic)) {
            if (head.length < magic.length && magic == Journal.MAGIC) {
                in.readerIndex(in.writerIndex());  // created, then killed before its header was written
                return;
            }
            throw new IOException(file + " is not a mongo-wire " + (magic == Journal.MAGIC ? "journal" : "snapshot"));
        }
    }

    private static ByteBuf map(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return Unpooled.wrappedBuffer(channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size()));
        }
    }

    /** Start the next generation's journal: after a start, after the last one found. */
    Journal startJournal(boolean fsync) throws IOException {
        generation++;
        return new Journal(journalPath(generation), fsync);
    }

    /** The generation after the current one; its journal is to be started by {@link Journal#rotate}. */
    long nextGeneration() {
        return ++generation;
    }

    Path journalPath(long gen) {
        return dir.resolve(String.format("journal-%012d.log", gen));
    }

    private Path snapshotPath(long gen) {
        return dir.resolve(String.format("snapshot-%012d.bin", gen));
    }

    /** Receives the documents of a snapshot. */
    interface Source {
        void writeTo(Sink sink) throws IOException;
    }

    /**
     * Writes snapshot records through a buffer, and fsyncs the file every {@link #SYNC_EVERY} bytes:
     * otherwise the whole snapshot (tens of MB) sits in the page cache until the final fsync and
     * then reaches the disk at once, and the journal's fdatasync before every reply queues behind it.
     */
    static final class Sink {
        private static final int FULL = 1 << 20;
        private static final long SYNC_EVERY = 4L << 20;
        private final FileChannel channel;
        private final ByteBuf buffer = Unpooled.buffer(FULL + (1 << 16));
        private long records;
        private long written;
        private long synced;
        private long longestHoldNanos;

        Sink(FileChannel channel) {
            this.channel = channel;
        }

        /** A document given as its top-level fields KEYS/VALUES[from, to) (see JournaledBackend.Coll#writeTo); written out by {@link #drainIfFull}. */
        void put(String database, String collection, String[] keys, Object[] values, int from, int to) {
            Journal.Record.encodePut(buffer, database, collection, keys, values, from, to);
            records++;
        }

        /** How long a collection's lock was held for one chunk (the longest is logged). */
        void held(long nanos) {
            longestHoldNanos = Math.max(longestHoldNanos, nanos);
        }

        void drainIfFull() throws IOException {
            if (buffer.readableBytes() >= FULL) {
                drain();
            }
        }

        void drain() throws IOException {
            ByteBuffer data = buffer.nioBuffer();
            Journal.writeFully(channel, data);
            written += buffer.readableBytes();
            buffer.clear();
            if (written - synced >= SYNC_EVERY) {
                channel.force(false);
                synced = written;
            }
        }
    }

    /**
     * Write snapshot GEN from SOURCE (atomically), then delete the files it makes obsolete; returns
     * what was written (the reply of the snapshot command).
     */
    Document writeSnapshot(long gen, Source source) throws IOException {
        Path target = snapshotPath(gen);
        Path tmp = dir.resolve(target.getFileName() + ".tmp");
        long began = System.nanoTime();
        long records;
        long longestHold;
        try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            Journal.writeFully(channel, ByteBuffer.wrap(SNAPSHOT_MAGIC));
            Sink sink = new Sink(channel);
            source.writeTo(sink);
            records = sink.records;
            longestHold = sink.longestHoldNanos;
            Journal.Record.encode(sink.buffer, Journal.Record.END, "", "", new Document("records", records));
            sink.drain();
            channel.force(true);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        syncDirectory(dir);
        lastSnapshotBytes = Files.size(target);
        List<Path> obsolete = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.forEach(file -> {
                Matcher m = FILE.matcher(file.getFileName().toString());
                if (m.matches() && Long.parseLong(m.group(2)) < gen) {
                    obsolete.add(file);
                }
            });
        }
        for (Path file : obsolete) {
            Files.deleteIfExists(file);
        }
        log.info("wrote {}: {} documents, {} MB in {} ms (a collection's lock held {} ms at most); deleted {} older files",
            target.getFileName(), records, mb(lastSnapshotBytes), (System.nanoTime() - began) / 1_000_000,
            String.format("%.1f", longestHold / 1e6), obsolete.size());
        return new Document("generation", gen).append("documents", records).append("bytes", lastSnapshotBytes)
            .append("millis", (System.nanoTime() - began) / 1_000_000).append("longestLockMillis", longestHold / 1e6);
    }

    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    private static String mb(long bytes) {
        return String.format("%.1f", bytes / 1e6);
    }

    /** Which document a record is about: what identifies it in its collection. */
    static final class Keys {
        private Keys() {}

        /** system.indexes has no _id: an index is its namespace and name; system.namespaces: its name. */
        static KeyValue of(String collection, Document document) {
            return switch (collection) {
                case "system.indexes" -> new KeyValue(document.get("ns"), document.get("name"));
                case "system.namespaces" -> new KeyValue(document.get("name"));
                default -> new KeyValue(document.get("_id")).normalized();
            };
        }

        /** The fields of DOCUMENT that {@link #of} reads: what a deletion records. */
        static Document keyFields(String collection, Document document) {
            return switch (collection) {
                case "system.indexes" -> new Document("ns", document.get("ns")).append("name", document.get("name"));
                case "system.namespaces" -> new Document("name", document.get("name"));
                default -> new Document("_id", document.get("_id"));
            };
        }
    }
}
