package local.mongowire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;

import de.bwaldvogel.mongo.bson.Document;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * The append-only journal of document effects, written with group commit.
 *
 * <p>A record is {@code int32 length, int32 crc32c(payload), payload} (little endian), the payload
 * being {@code kind, database cstring, collection cstring[, BSON document]} (see {@link Record}).
 * Records are appended to an in-memory buffer while the change is made (under the collection's
 * lock, so a document's records are in the order of its changes); {@link #awaitDurable} writes
 * and fsyncs whatever has been appended up to a point. One thread writes at a time: the others wait
 * for it and usually find their records already written by it, so concurrent writers share one
 * fsync (group commit). A record torn by a crash fails its length or checksum and ends the replay
 * of that file ({@link Record#read}).
 *
 * <p>The file is extended with zeros ahead of the records, {@link #PREALLOCATE} bytes at a time
 * (fsynced once), so that the fsync before a reply is an fdatasync of blocks that already exist:
 * the file's size and block map do not change, and ext4 then writes just the data, with no commit
 * of its own journal. Reading stops at the first zero length; zeros after it are that reserve.
 */
final class Journal implements AutoCloseable {
    static final byte[] MAGIC = "MWJRNL01".getBytes(StandardCharsets.US_ASCII);
    static final int PREALLOCATE = 8 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20);

    private final boolean fsync;
    /** Taken by appenders only for the copy into {@link #active}: never held across I/O. */
    private final ReentrantLock appendLock = new ReentrantLock();
    /** Held by the one thread writing the buffer to the file (and by a rotation). */
    private final ReentrantLock flushLock = new ReentrantLock();
    private final ThreadLocal<ByteBuf> scratch = ThreadLocal.withInitial(() -> Unpooled.buffer(4096));

    private ByteBuf active = Unpooled.buffer(1 << 16);
    private ByteBuf spare = Unpooled.buffer(1 << 16);
    /** Bytes appended / written (and fsynced unless --no-fsync) since start, across files. */
    private long appended;
    private volatile long durable;
    private volatile IOException failure;
    private volatile boolean unsynced;

    private FileChannel channel;
    private volatile long fileBytes;
    /** Length of the file: the records, then zeros. */
    private long allocated;

    /** Start a new journal FILE (it must not exist); the header is written and fsynced. */
    Journal(Path file, boolean fsync) throws IOException {
        this.fsync = fsync;
        Next first = prepare(file);
        this.channel = first.channel;
        this.fileBytes = MAGIC.length;
        this.allocated = first.allocated;
    }

    /** A journal file made ready for {@link #rotate}: header and zero reserve written and fsynced. */
    static final class Next {
        private final FileChannel channel;
        private final long allocated;

        private Next(FileChannel channel, long allocated) {
            this.channel = channel;
            this.allocated = allocated;
        }
    }

    /**
     * Create FILE (it must not exist) with its header and its first zero reserve, fsynced together
     * with the folder: all the slow part of starting a journal, done before a rotation takes the
     * lock that writers wait on.
     */
    static Next prepare(Path file) throws IOException {
        FileChannel created = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try {
            writeFully(created, ByteBuffer.wrap(MAGIC));
            long allocated = MAGIC.length + PREALLOCATE;
            for (long position = MAGIC.length; position < allocated; ) {
                ByteBuffer zeros = ZEROS.duplicate();
                zeros.limit((int) Math.min(zeros.capacity(), allocated - position));
                position += created.write(zeros, position);
            }
            created.force(true);
            Store.syncDirectory(file.getParent());
            return new Next(created, allocated);
        } catch (IOException | RuntimeException e) {
            created.close();
            throw e;
        }
    }

    /** Append one effect (the document is encoded now: it may change right after). */
    void append(byte kind, String database, String collection, Document document) {
        ByteBuf record = scratch.get().clear();
        Record.encode(record, kind, database, collection, document);
        appendLock.lock();
        try {
            active.writeBytes(record, record.readerIndex(), record.readableBytes());
            appended += record.readableBytes();
        } finally {
            appendLock.unlock();
        }
    }

    /** Position (in appended bytes) up to which everything appended so far must become durable. */
    long appendedPosition() {
        appendLock.lock();
        try {
            return appended;
        } finally {
            appendLock.unlock();
        }
    }

    /** Return once everything appended up to TARGET is in the file (and fsynced, by default). */
    void awaitDurable(long target) throws IOException {
        checkHealthy();
        if (durable >= target) {
            return;
        }
        flushLock.lock();
        try {
            if (durable < target) {  // else the thread before us wrote our records too
                flushLocked(fsync);
            }
        } finally {
            flushLock.unlock();
        }
        checkHealthy();
    }

    void checkHealthy() throws IOException {
        if (failure != null) {
            throw new IOException("the journal failed earlier; no write is acknowledged any more", failure);
        }
    }

    private void flushLocked(boolean force) throws IOException {
        ByteBuf out;
        long end;
        appendLock.lock();
        try {
            out = active;
            active = spare;
            spare = null;
            end = appended;
        } finally {
            appendLock.unlock();
        }
        try {
            int length = out.readableBytes();
            if (length > 0) {
                if (fileBytes + length > allocated) {
                    preallocate(fileBytes + length);
                }
                ByteBuffer data = out.nioBuffer();
                for (long position = fileBytes; data.hasRemaining(); ) {
                    position += channel.write(data, position);
                }
                fileBytes += length;
            }
            if (force) {
                channel.force(false);
            } else if (length > 0) {
                unsynced = true;
            }
        } catch (IOException | RuntimeException e) {
            // The records are in memory and maybe half in the file: nothing more may be acknowledged.
            failure = e instanceof IOException io ? io : new IOException(e);
            throw failure;
        } finally {
            out.clear();
            spare = out;
        }
        durable = end;
    }

    /** Extend the file with zeros to past NEEDED, and make that durable (it changes the file's size). */
    private void preallocate(long needed) throws IOException {
        long target = allocated + Math.max(PREALLOCATE, needed - allocated);
        for (long position = allocated; position < target; ) {
            ByteBuffer zeros = ZEROS.duplicate();
            zeros.limit((int) Math.min(zeros.capacity(), target - position));
            position += channel.write(zeros, position);
        }
        channel.force(true);
        allocated = target;
    }

    /** Bytes of records in the current journal file. */
    long fileBytes() {
        return fileBytes;
    }

    /**
     * Write out what is pending, then continue in NEXT (from {@link #prepare}): every record
     * appended before the switch is in the old file, every later one in NEXT. Writers wait only for
     * that one flush: NEXT's file was created and fsynced beforehand.
     */
    void rotate(Next next) throws IOException {
        flushLock.lock();
        try {
            flushLocked(true);
            FileChannel old = channel;
            channel = next.channel;
            fileBytes = MAGIC.length;
            allocated = next.allocated;
            unsynced = false;
            old.close();
        } finally {
            flushLock.unlock();
        }
    }

    /** With --no-fsync: called every half second, so a machine crash loses at most that. */
    void syncIfNeeded() {
        if (!unsynced) {
            return;
        }
        unsynced = false;
        FileChannel current = channel;
        try {
            current.force(false);
        } catch (ClosedChannelException e) {
            // rotated meanwhile: the rotation forced that file
        } catch (IOException e) {
            failure = e;
        }
    }

    @Override public void close() throws IOException {
        flushLock.lock();
        try {
            if (failure == null && channel.isOpen()) {
                flushLocked(true);
            }
            channel.close();
        } finally {
            flushLock.unlock();
        }
    }

    static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** One record: its encoding and its decoding. */
    static final class Record {
        static final byte PUT = 1;   // the whole document as it is now (insert, update, replace)
        static final byte DELETE = 2; // the document with these key fields is gone
        static final byte DROP = 3;  // the collection is gone, with all its documents
        static final byte END = 4;   // snapshots only: the file is complete
        static final int HEADER = 8;
        /** A length above this cannot be a record (16 MB documents plus names): a torn header. */
        static final int MAX_PAYLOAD = 17 << 20;

        final byte kind;
        final String database;
        final String collection;
        final Document document;
        final int size;

        private Record(byte kind, String database, String collection, Document document, int size) {
            this.kind = kind;
            this.database = database;
            this.collection = collection;
            this.document = document;
            this.size = size;
        }

        static void encode(ByteBuf out, byte kind, String database, String collection, Document document) {
            int start = begin(out, kind, database, collection);
            if (document != null) {
                LeanBson.encodeDocument(document, out);
            }
            finish(out, start);
        }

        /** A PUT of the document whose top-level fields are KEYS/VALUES[from, to) (a snapshot's copy). */
        static void encodePut(ByteBuf out, String database, String collection, String[] keys, Object[] values, int from, int to) {
            int start = begin(out, PUT, database, collection);
            LeanBson.encodeFields(keys, values, from, to, out);
            finish(out, start);
        }

        private static int begin(ByteBuf out, byte kind, String database, String collection) {
            int start = out.writerIndex();
            out.writeIntLE(0);
            out.writeIntLE(0);
            out.writeByte(kind);
            writeCString(out, database);
            writeCString(out, collection);
            return start;
        }

        private static void finish(ByteBuf out, int start) {
            int length = out.writerIndex() - start - HEADER;
            CRC32C crc = new CRC32C();
            crc.update(out.nioBuffer(start + HEADER, length));
            out.setIntLE(start, length);
            out.setIntLE(start + 4, (int) crc.getValue());
        }

        private static void writeCString(ByteBuf out, String value) {
            out.writeBytes(value.getBytes(StandardCharsets.UTF_8));
            out.writeByte(0);
        }

        /**
         * The next record of IN, or null at the end of the data or at a record that is incomplete
         * or fails its checksum (a write torn by a crash): IN then stays where that record begins.
         */
        static Record read(ByteBuf in) {
            int start = in.readerIndex();
            if (in.readableBytes() < HEADER) {
                return null;
            }
            int length = in.getIntLE(start);
            int checksum = in.getIntLE(start + 4);
            if (length <= 0 || length > MAX_PAYLOAD || in.readableBytes() < HEADER + length) {
                return null;
            }
            CRC32C crc = new CRC32C();
            crc.update(in.nioBuffer(start + HEADER, length));
            if ((int) crc.getValue() != checksum) {
                return null;
            }
            ByteBuf payload = in.slice(start + HEADER, length);
            byte kind = payload.readByte();
            String database = readCString(payload);
            String collection = readCString(payload);
            int documentStart = payload.readerIndex();
            Document document = payload.isReadable() ? de.bwaldvogel.mongo.wire.bson.BsonDecoder.decodeBson(payload) : null;
            in.readerIndex(start + HEADER + length);
            return new Record(kind, database, collection, document, length - documentStart);
        }

        private static String readCString(ByteBuf in) {
            int end = in.indexOf(in.readerIndex(), in.writerIndex(), (byte) 0);
            if (end < 0) {
                throw new IllegalStateException("record without a terminated name");
            }
            String value = in.toString(in.readerIndex(), end - in.readerIndex(), StandardCharsets.UTF_8);
            in.readerIndex(end + 1);
            return value;
        }
    }
}
