package local.mongowire;

import java.util.Collection;
import java.util.Iterator;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.DocumentWithPosition;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.h2.mvstore.MVMap;

/**
 * The memory and H2 collections, counting in {@link IndexStats} how each query was answered.
 *
 * <p>Each overrides {@code AbstractMongoCollection.queryDocuments}, every read's one path, with the
 * library's own dispatch (mongo-java-server 1.47.0: the first index whose {@code canHandle} accepts
 * the filter gives the positions, else every document is read) plus the count. The two copies are
 * the same code: the classes share no superclass of ours (one extends MemoryCollection, the other
 * H2Collection). The memory one also measures its data size only when asked (below).
 */
final class CountedCollections {
    private CountedCollections() {}

    /** The memory backend's collection (and, through JournaledBackend.Coll, the journal backend's). */
    static class Memory extends MemoryCollection {
        private IndexStats.Counters counters;

        Memory(MongoDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
            super(database, name, options, cursors);
            counters = IndexStats.of(getFullName());
        }

        @Override protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                                                       int batchSize, Document fieldSelector) {
            for (Index<Integer> index : getIndexes()) {
                if (index.canHandle(query)) {
                    Collection<Integer> positions = IndexStats.collect(index.getPositions(query));
                    counters.served(index.getName(), positions.size());
                    return matchDocuments(query, positions, orderBy, skip, limit, batchSize, fieldSelector);
                }
            }
            counters.scanned(count());
            return matchDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }

        @Override public synchronized void renameTo(MongoDatabase newDatabase, String newName) {
            super.renameTo(newDatabase, newName);
            counters = IndexStats.of(getFullName());
        }

        /**
         * The data size is measured when asked (collStats, dbStats), not kept up to date: keeping it
         * BSON-encoded a document on every insert and delete, and twice on every update (the old
         * and the new version), only to count its bytes.
         */
        @Override protected boolean tracksDataSize() {
            return false;
        }

        @Override protected synchronized int getDataSize() {
            ByteBuf buffer = Unpooled.buffer();
            try {
                long size = 0;
                for (Iterator<DocumentWithPosition<Integer>> all = streamAllDocumentsWithPosition().iterator(); all.hasNext(); ) {
                    buffer.clear();
                    LeanBson.encodeDocument(all.next().getDocument(), buffer);
                    size += buffer.writerIndex();
                }
                return (int) Math.min(size, Integer.MAX_VALUE);
            } finally {
                buffer.release();
            }
        }
    }

    /** The H2 backend's collection. */
    static final class H2 extends H2Collection {
        private IndexStats.Counters counters;

        H2(MongoDatabase database, String name, CollectionOptions options, MVMap<Object, Document> data,
           MVMap<String, Object> meta, CursorRegistry cursors) {
            super(database, name, options, data, meta, cursors);
            counters = IndexStats.of(getFullName());
        }

        @Override protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                                                       int batchSize, Document fieldSelector) {
            for (Index<Object> index : getIndexes()) {
                if (index.canHandle(query)) {
                    Collection<Object> positions = IndexStats.collect(index.getPositions(query));
                    counters.served(index.getName(), positions.size());
                    return matchDocuments(query, positions, orderBy, skip, limit, batchSize, fieldSelector);
                }
            }
            counters.scanned(count());
            return matchDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }

        @Override public synchronized void renameTo(MongoDatabase newDatabase, String newName) {
            super.renameTo(newDatabase, newName);
            counters = IndexStats.of(getFullName());
        }
    }
}
