package local.mongowire;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

import de.bwaldvogel.mongo.bson.Document;

/**
 * How each collection's queries were answered: from which index, or by reading every document;
 * and the {@code mongoWireIndexStats} command that reads (and resets) the counts.
 *
 * <p>A deterministic answer to "did this filter use the index?" for tests, where timing an indexed
 * query against a scan flakes on a loaded machine. Counted at the collection's one query path
 * ({@link CountedCollections}): find, count, distinct, and the selectors of update, delete and
 * findAndModify. An aggregation reads its collection through that path with an empty filter, so it
 * counts as a scan, which it is. Per query: two {@link LongAdder} increments and, when an index
 * answers, one map lookup by the index's name.
 *
 * <p>One server per process: the counters are process-wide, keyed by namespace ("db.collection").
 * They outlive a dropped collection (a new one of the same name adds to them) until reset; a renamed
 * collection counts under its new name from then on.
 */
final class IndexStats {
    static final String COMMAND = "mongoWireIndexStats";

    private static final Map<String, Counters> BY_NAMESPACE = new ConcurrentHashMap<>();

    private IndexStats() {}

    /** The counters of NAMESPACE ("db.collection"), created at the first call. */
    static Counters of(String namespace) {
        return BY_NAMESPACE.computeIfAbsent(namespace, n -> new Counters());
    }

    /** POSITIONS as a collection, so its size is the number of documents the query will examine. */
    static <P> Collection<P> collect(Iterable<P> positions) {
        if (positions instanceof Collection<P> collection) {
            return collection;  // what every index here returns: no copy
        }
        List<P> list = new ArrayList<>();
        positions.forEach(list::add);
        return list;
    }

    /** One collection's counts. */
    static final class Counters {
        private final LongAdder scans = new LongAdder();
        private final LongAdder scanned = new LongAdder();
        private final Map<String, Usage> indexes = new ConcurrentHashMap<>();

        /** A query answered by reading all DOCUMENTS of the collection. */
        void scanned(long documents) {
            scans.increment();
            scanned.add(documents);
        }

        /** A query answered from INDEX, which gave DOCUMENTS candidates for the filter to examine. */
        void served(String index, long documents) {
            Usage usage = indexes.get(index);
            if (usage == null) {
                usage = indexes.computeIfAbsent(index, i -> new Usage());
            }
            usage.queries.increment();
            usage.examined.add(documents);
        }

        private Document read(String namespace, boolean reset) {
            List<Document> byIndex = new ArrayList<>();
            for (Map.Entry<String, Usage> entry : new TreeMap<>(indexes).entrySet()) {
                byIndex.add(new Document("name", entry.getKey())
                    .append("queries", take(entry.getValue().queries, reset))
                    .append("docsExamined", take(entry.getValue().examined, reset)));
            }
            Document scan = new Document("queries", take(scans, reset)).append("docsExamined", take(scanned, reset));
            return new Document("ns", namespace).append("collScan", scan).append("indexes", byIndex);
        }
    }

    private static final class Usage {
        final LongAdder queries = new LongAdder();
        final LongAdder examined = new LongAdder();
    }

    private static long take(LongAdder adder, boolean reset) {
        return reset ? adder.sumThenReset() : adder.sum();
    }

    /**
     * {@code {mongoWireIndexStats: 1}} sent to database DATABASE: the counts of its collections
     * (sent to admin: of every database), each {@code {ns, collScan: {queries, docsExamined},
     * indexes: [{name, queries, docsExamined}]}}, sorted by namespace. With {@code reset: true} the
     * counts returned are also set to zero (a query running meanwhile is counted in one or the other).
     */
    static Document command(String database, Document command) {
        Object resetValue = command.get("reset");
        boolean reset = Boolean.TRUE.equals(resetValue) || (resetValue instanceof Number n && n.doubleValue() != 0);
        boolean all = database.equals("admin");
        String prefix = database + ".";
        List<Document> collections = new ArrayList<>();
        for (Map.Entry<String, Counters> entry : new TreeMap<>(BY_NAMESPACE).entrySet()) {
            if (all || entry.getKey().startsWith(prefix)) {
                collections.add(entry.getValue().read(entry.getKey(), reset));
            }
        }
        return new Document("collections", collections).append("ok", 1.0);
    }
}
