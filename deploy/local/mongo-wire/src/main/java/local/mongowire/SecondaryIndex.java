package local.mongowire;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.MaxKey;
import de.bwaldvogel.mongo.bson.MinKey;

/**
 * A non-unique (single-field or compound) index, kept in memory, that serves filters on its leading keys.
 *
 * <p>mongo-java-server accepts a non-unique {@code createIndex} and ignores it
 * ({@code AbstractMongoDatabase.openOrCreateSecondaryIndex} returns an {@code EmptyIndex}), so every
 * filter other than an {@code _id} or unique-key lookup scans the collection under its lock. This
 * index maps each document's key tuple (its values at the index's paths, ordered by the server's
 * own {@link ValueComparator}) to the document's position. It is rebuilt from the collection when
 * opened (the collection fills an empty index: at server start and at {@code createIndex}), and
 * kept up to date on insert, update and delete.
 *
 * <p>A filter is served when it constrains the leading key(s): equality, {@code $eq}, {@code $in},
 * ranges ({@code $gt/$gte/$lt/$lte}), {@code $exists: false}, or a top-level {@code $or} whose every
 * branch constrains the key (e.g. {@code {$or: [{k: {$exists: false}}, {k: {$lt: t}}]}}); after
 * equalities on the first keys, the next key may be a range. The index returns a superset of the
 * matching documents (bounds are taken inclusively and across types) and the collection applies the
 * whole filter to them, so a served query returns exactly what a scan returns. Documents whose
 * indexed value is an array or a sub-document are not in the ordered map: they are returned for every
 * query (so array and sub-document matching stays the matcher's), which keeps results correct but
 * makes such documents as costly as before.
 *
 * <p>Positions come back in natural order (the order a scan reads them), so a query without a sort
 * returns its documents in the same order with or without the index.
 */
final class SecondaryIndex<P> extends Index<P> {
    private static final Comparator<Object> VALUES = ValueComparator.asc();
    private static final Object MIN = MinKey.getInstance();
    private static final Object MAX = MaxKey.getInstance();
    /** Beyond this many point combinations of a compound prefix, only the first key bounds the walk. */
    private static final int MAX_COMBINATIONS = 1000;

    private static final Comparator<List<Object>> TUPLES = (a, b) -> {
        for (int i = 0; i < a.size(); i++) {
            int c = compareValues(a.get(i), b.get(i));
            if (c != 0) {
                return c;
            }
        }
        return 0;
    };

    /**
     * {@link #VALUES}, with the two kinds of key every service indexes (strings and dates) compared
     * directly: for two of one of those kinds ValueComparator answers exactly this, after a walk
     * through its type checks that made up most of an index update's cost.
     */
    private static int compareValues(Object a, Object b) {
        if (a instanceof String x && b instanceof String y) {
            return x.compareTo(y);
        }
        if (a instanceof Instant x && b instanceof Instant y) {
            return x.compareTo(y);
        }
        return VALUES.compare(a, b);
    }

    /** Where one document is: its position and its key tuple (null: it is in {@link #unordered}). */
    private record Slot<P>(P position, List<Object> key) {}

    /** [lo, hi] on one key's values, both inclusive; lo == hi for an equality. */
    private record Interval(Object lo, Object hi) {
        static Interval point(Object value) { return new Interval(value, value); }
        boolean isPoint() { return lo == hi; }
    }

    /** The secondary indexes of every collection of one database, so a query can pick the best. */
    static final class Siblings<P> {
        private final Map<String, List<SecondaryIndex<P>>> byCollection = new ConcurrentHashMap<>();

        SecondaryIndex<P> open(String collection, String name, List<IndexKey> keys, boolean sparse) {
            List<SecondaryIndex<P>> list = byCollection.computeIfAbsent(collection, c -> new CopyOnWriteArrayList<>());
            return new SecondaryIndex<>(name, keys, sparse, list);
        }
    }

    private final List<SecondaryIndex<P>> siblings;
    private final List<String> paths;
    /** Per path: whether it names a top-level field (read with one map lookup, not split and walked). */
    private final boolean[] topLevel;
    private final NavigableMap<List<Object>, Set<P>> ordered = new TreeMap<>(TUPLES);
    private final Set<P> unordered = new LinkedHashSet<>();
    private final Map<Object, Slot<P>> byId = new HashMap<>();
    /** A document without _id (system collections): it cannot be found again on delete, so give up. */
    private boolean disabled;
    /**
     * In {@link #siblings} from its first document on. A second createIndex of the same name makes a
     * new instance that the collection discards (it keeps the first) and never feeds: it never
     * registers. An index that never had a document serves an empty collection, where any index is best.
     */
    private boolean registered;

    private SecondaryIndex(String name, List<IndexKey> keys, boolean sparse, List<SecondaryIndex<P>> siblings) {
        super(name, keys, sparse);
        this.paths = keys.stream().map(IndexKey::getKey).toList();
        this.topLevel = new boolean[paths.size()];
        for (int i = 0; i < paths.size(); i++) {
            topLevel[i] = paths.get(i).indexOf('.') < 0;
        }
        this.siblings = siblings;
    }

    // ---- maintenance ----------------------------------------------------------------------------

    @Override public synchronized void checkAdd(Document document, MongoCollection<P> collection) {
        // not unique: nothing to check
    }

    @Override public synchronized void add(Document document, P position, MongoCollection<P> collection) {
        if (!registered) {
            siblings.add(this);
            registered = true;
        }
        Object id = idOf(document);
        if (id == null) {
            disabled = true;
            return;
        }
        Slot<P> previous = byId.remove(id);  // none expected (updates remove first): never keep two slots
        if (previous != null) {
            forget(previous);
        }
        List<Object> key = keyOf(document);
        if (key != null) {
            try {
                ordered.computeIfAbsent(key, k -> new LinkedHashSet<>()).add(position);
            } catch (RuntimeException incomparable) {
                key = null;  // a value ValueComparator cannot order: always a candidate instead
            }
        }
        if (key == null) {
            unordered.add(position);
        }
        byId.put(id, new Slot<>(position, key));
    }

    @Override public synchronized P remove(Document document) {
        Object id = idOf(document);
        Slot<P> slot = id == null ? null : byId.remove(id);
        if (slot == null) {
            return null;
        }
        forget(slot);
        return slot.position();
    }

    private void forget(Slot<P> slot) {
        if (slot.key() == null) {
            unordered.remove(slot.position());
            return;
        }
        Set<P> positions = ordered.get(slot.key());
        if (positions != null) {
            positions.remove(slot.position());
            if (positions.isEmpty()) {
                ordered.remove(slot.key());
            }
        }
    }

    @Override public synchronized void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<P> collection) {
        // not unique: nothing to check
    }

    @Override public synchronized void updateInPlace(Document oldDocument, Document newDocument, P position, MongoCollection<P> collection) {
        Object id = idOf(newDocument);
        Slot<P> slot = id == null ? null : byId.get(id);
        if (slot != null && slot.key() != null && slot.position().equals(position) && id.equals(idOf(oldDocument))
            && slot.key().equals(keyOf(newDocument))) {
            return;  // the same document at the same place under equal keys: the ordered map is already right
        }
        remove(oldDocument);
        add(newDocument, position, collection);
    }

    @Override public synchronized P getPosition(Document document) {
        Object id = idOf(document);
        Slot<P> slot = id == null ? null : byId.get(id);
        return slot == null ? null : slot.position();
    }

    @Override public synchronized long getCount() { return byId.size(); }
    @Override public long getDataSize() { return getCount(); }

    // Without _id the index cannot give a deleted document's position; as a sparse index may, it says none.
    @Override protected boolean isSparse() { return disabled || super.isSparse(); }

    @Override public synchronized void drop() {
        siblings.remove(this);
        registered = false;
        ordered.clear();
        unordered.clear();
        byId.clear();
    }

    /** The tuple of a document's values at the index's paths (missing reads as null); null if one is an array or sub-document. */
    private List<Object> keyOf(Document document) {
        List<Object> key = new ArrayList<>(paths.size());
        for (int i = 0; i < paths.size(); i++) {
            String path = paths.get(i);
            Object value = topLevel[i] ? document.getOrMissing(path) : Utils.getSubdocumentValueCollectionAware(document, path);
            if (value instanceof Collection || value instanceof Map) {
                return null;
            }
            key.add(Missing.isNullOrMissing(value) ? null : value);
        }
        return key;
    }

    /** The document's _id as a map key: numbers as the server compares them (1 == 1.0). */
    private static Object idOf(Document document) {
        Object id = document.get("_id");
        if (Missing.isNullOrMissing(id)) {
            return null;
        }
        if (id instanceof Integer || id instanceof Short || id instanceof Byte || id instanceof Float
            || (id instanceof Double d && d == 0.0)) {
            return Double.valueOf(((Number) id).doubleValue() + 0.0);
        }
        if (id instanceof Long l && (double) l == l && Math.abs(l) < (1L << 53)) {
            return Double.valueOf(l);
        }
        return id;
    }

    // ---- queries --------------------------------------------------------------------------------

    /** Whether this index serves QUERY and no sibling index of the collection serves it better. */
    @Override public boolean canHandle(Document query) {
        int score = score(query);
        if (score == 0 || !siblings.contains(this)) {
            return score > 0;
        }
        for (SecondaryIndex<P> other : siblings) {
            if (other == this) {
                continue;
            }
            int theirs = other.score(query);
            if (theirs > score || (theirs == score && siblings.indexOf(other) < siblings.indexOf(this))) {
                return false;
            }
        }
        return true;
    }

    /** 2 per leading key held to points, 1 more if the next is held to a range; 0: not served. */
    private int score(Document query) {
        if (disabledNow()) {
            return 0;
        }
        List<List<Interval>> plan = plan(query);
        int score = 0;
        for (List<Interval> intervals : plan) {
            score += intervals.stream().allMatch(Interval::isPoint) ? 2 : 1;
        }
        return score;
    }

    private synchronized boolean disabledNow() { return disabled; }

    @Override public synchronized Iterable<P> getPositions(Document query) {
        List<List<Interval>> plan = plan(query);
        Set<P> found = new LinkedHashSet<>(unordered);
        walk(plan, 0, new ArrayList<>(), found);
        List<P> positions = new ArrayList<>(found);
        try {
            positions.sort(VALUES);
        } catch (RuntimeException incomparable) {
            // positions the comparator cannot order: any order is a valid answer to an unsorted find
        }
        return positions;
    }

    /** Adds the positions under every combination of the plan's points and, last, its intervals. */
    private void walk(List<List<Interval>> plan, int depth, List<Object> prefix, Set<P> found) {
        for (Interval interval : plan.get(depth)) {
            if (depth + 1 < plan.size()) {
                prefix.add(interval.lo());
                walk(plan, depth + 1, prefix, found);
                prefix.remove(prefix.size() - 1);
                continue;
            }
            List<Object> lower = new ArrayList<>(prefix);
            List<Object> upper = new ArrayList<>(prefix);
            lower.add(interval.lo());
            upper.add(interval.hi());
            while (lower.size() < paths.size()) {
                lower.add(MIN);
                upper.add(MAX);
            }
            if (TUPLES.compare(lower, upper) > 0) {
                continue;  // an empty range ($gt 5, $lt 3)
            }
            for (Set<P> positions : ordered.subMap(lower, true, upper, true).values()) {
                found.addAll(positions);
            }
        }
    }

    /**
     * The intervals each leading key is held to: all but the last are points only; empty if the
     * first key is not constrained (the index cannot serve the query).
     */
    private List<List<Interval>> plan(Document query) {
        List<List<Interval>> plan = new ArrayList<>();
        int combinations = 1;
        for (String path : paths) {
            List<Interval> intervals = constraint(query, path);
            if (intervals == null) {
                break;
            }
            combinations *= Math.max(1, intervals.size());
            if (!plan.isEmpty() && combinations > MAX_COMBINATIONS) {
                break;
            }
            plan.add(intervals);
            if (!intervals.stream().allMatch(Interval::isPoint)) {
                break;
            }
        }
        return plan;
    }

    /** The intervals QUERY holds PATH to, or null if it does not (or not in a way served here). */
    private static List<Interval> constraint(Document query, String path) {
        List<Document> conjuncts = new ArrayList<>();
        flatten(query, conjuncts);
        for (Document conjunct : conjuncts) {
            if (conjunct.containsKey(path)) {
                List<Interval> intervals = condition(conjunct.get(path));
                if (intervals != null) {
                    return intervals;
                }
            }
        }
        for (Document conjunct : conjuncts) {
            if (conjunct.get("$or") instanceof List<?> branches && !branches.isEmpty()) {
                List<Interval> union = new ArrayList<>();
                for (Object branch : branches) {
                    List<Interval> intervals = branch instanceof Document d ? constraint(d, path) : null;
                    if (intervals == null) {
                        union = null;
                        break;
                    }
                    union.addAll(intervals);
                }
                if (union != null) {
                    return union;
                }
            }
        }
        return null;
    }

    private static void flatten(Document query, List<Document> into) {
        into.add(query);
        if (query.get("$and") instanceof List<?> parts) {
            for (Object part : parts) {
                if (part instanceof Document d) {
                    flatten(d, into);
                }
            }
        }
    }

    /** The intervals one field condition ({@code v} or {@code {$op: v, ...}}) allows, or null. */
    private static List<Interval> condition(Object condition) {
        if (!(condition instanceof Document operators)) {
            return orderable(condition) ? List.of(Interval.point(condition)) : null;
        }
        if (operators.isEmpty() || operators.keySet().stream().anyMatch(op -> !op.startsWith("$"))
            || operators.containsKey("$not")) {
            return null;  // a sub-document equality, or a negation: not served
        }
        Object lo = MIN;
        Object hi = MAX;
        boolean bounded = false;
        for (Map.Entry<String, Object> entry : operators.entrySet()) {
            Object value = entry.getValue();
            switch (entry.getKey()) {
                case "$eq" -> {
                    if (orderable(value)) {
                        return List.of(Interval.point(value));
                    }
                }
                case "$in" -> {
                    if (value instanceof Collection<?> values && values.stream().allMatch(SecondaryIndex::orderable)) {
                        return values.stream().map(Interval::point).toList();
                    }
                }
                case "$exists" -> {
                    if (Boolean.FALSE.equals(value) || (value instanceof Number n && n.doubleValue() == 0)) {
                        return List.of(Interval.point(null));  // missing reads as null in the index
                    }
                }
                case "$gt", "$gte" -> {
                    if (orderable(value)) {
                        lo = VALUES.compare(value, lo) > 0 ? value : lo;
                        bounded = true;
                    }
                }
                case "$lt", "$lte" -> {
                    if (orderable(value)) {
                        hi = VALUES.compare(value, hi) < 0 ? value : hi;
                        bounded = true;
                    }
                }
                default -> { /* $ne, $nin, $regex, $size, $type, $elemMatch, ...: left to the matcher */ }
            }
        }
        return bounded ? List.of(new Interval(lo, hi)) : null;
    }

    /** A value this index can look up: a scalar (null included), not an array, sub-document or pattern. */
    private static boolean orderable(Object value) {
        return !(value instanceof Collection) && !(value instanceof Map) && !(value instanceof Pattern)
            && !BsonRegularExpression.isRegularExpression(value);
    }
}
