//! A transactional batch: the user's scripts with progress markers between their statements
//! (see [`Markers`]), the runner's statements around them, and the map back from what was sent
//! to the scripts, to say where a failure happened.
//!
//! A batch is sent as one or more query strings, its *pieces*, inside the one transaction its
//! first piece opens: a piece ends only between two statements of a script, once it holds
//! [`PIECE_BYTES`], and a statement that long alone is sent by itself, straight from the
//! script (no copy). So the client's memory for a big script (the query string, the driver's
//! two copies of it, the responses) is bounded by a piece, not by the file; a script below
//! [`PIECE_BYTES`] goes in one round trip, as before. Pieces are made one at a time, as they
//! are sent ([`Pieces::next_piece`]); the batch itself holds the recipe, not the text.

use std::borrow::Cow;

use crate::db::DbError;
use crate::embedded::Script;
use crate::error::Location;
use crate::sql::Markers;

use super::Job;

/// Where a batch is cut into pieces: about the size of the script text of a piece. Large
/// enough that a round trip per piece costs nothing next to its statements (a MiB of SQL runs
/// for tens of milliseconds at least), small enough that a piece and what the driver holds of
/// it are a constant next to a big file.
pub(super) const PIECE_BYTES: usize = 1 << 20;

/// What a batch sends, in order.
pub(super) struct Batch<'s> {
    items: Vec<Item<'s>>,
    markers: Markers,
    piece_bytes: usize,
}

enum Item<'s> {
    /// The runner's own statements.
    Text(String),
    Script(ScriptItem<'s>),
    /// `COMMIT` and what follows it (see [`Batch::finish_with`]).
    Finish {
        after_commit: String,
        calls: String,
    },
}

/// A script with its markers (see [`Batch::script`]).
struct ScriptItem<'s> {
    job: usize,
    script: &'s Script,
    first: bool,
    prefix: String,
    tail: String,
}

/// A point of progress of a batch: what its marker means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    /// Which job's script.
    job: usize,
    /// How many of that script's statements are done.
    done: usize,
}

impl Point {
    /// Before the first marker: nothing of the first job done.
    const START: Point = Point { job: 0, done: 0 };
}

/// What each marker means, marker `n` at index `n - 1`, kept as runs: a script's markers
/// count its statements one by one, so a run of them is one entry (a list of 200,000 points
/// took 16 bytes a statement).
#[derive(Debug, Default)]
struct Points {
    /// The first point of each run, and how many points the run holds.
    runs: Vec<(Point, usize)>,
    len: usize,
}

impl Points {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, point: Point) {
        self.len += 1;
        if let Some((first, count)) = self.runs.last_mut() {
            if first.job == point.job && first.done + *count == point.done {
                *count += 1;
                return;
            }
        }
        self.runs.push((point, 1));
    }

    fn get(&self, index: usize) -> Option<Point> {
        let mut start = 0;
        for &(first, count) in &self.runs {
            if index < start + count {
                return Some(Point {
                    job: first.job,
                    done: first.done + (index - start),
                });
            }
            start += count;
        }
        None
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<Point> {
        (0..self.len).filter_map(|i| self.get(i)).collect()
    }
}

/// Where a transactional batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FailedAt {
    /// Which job (index in the batch).
    pub job: usize,
    /// The statement; `None` when the failure came after the job's last statement.
    pub statement: Option<Location>,
}

/// A position in one of a batch's scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScriptOffset {
    /// Which job's script.
    job: usize,
    /// Byte offset in that script.
    offset: usize,
}

/// A span of a piece copied from a script.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Byte offset in the piece.
    sent: usize,
    /// Which job's script.
    job: usize,
    /// Byte offset in the script.
    script: usize,
    len: usize,
}

/// One query string of a batch, and where its text came from.
pub(super) struct Piece<'s> {
    text: Cow<'s, str>,
    spans: Vec<Span>,
}

impl<'s> Piece<'s> {
    fn new() -> Piece<'s> {
        Piece {
            text: Cow::Owned(String::new()),
            spans: Vec::new(),
        }
    }

    /// A statement of a script sent by itself, borrowed from the script.
    fn borrowed(job: usize, script: &'s Script, start: usize, end: usize) -> Piece<'s> {
        let text = script.sql().get(start..end).unwrap_or_default();
        Piece {
            text: Cow::Borrowed(text),
            spans: vec![Span {
                sent: 0,
                job,
                script: start,
                len: text.len(),
            }],
        }
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    fn len(&self) -> usize {
        self.text.len()
    }

    fn push(&mut self, sql: &str) {
        self.text.to_mut().push_str(sql);
    }

    fn copy(&mut self, job: usize, script: &Script, start: usize, end: usize) {
        let Some(text) = script.sql().get(start..end) else {
            return;
        };
        self.spans.push(Span {
            sent: self.text.len(),
            job,
            script: start,
            len: text.len(),
        });
        self.push(text);
    }

    /// The job and script byte offset of the server's (1-based, in characters) `position` in
    /// this piece. A position in the runner's own text right after a statement (a `;` it added
    /// after an incomplete statement) counts as the end of that statement.
    fn script_offset(&self, position: u32) -> Option<ScriptOffset> {
        let byte = self
            .text
            .char_indices()
            .nth((position as usize).checked_sub(1)?)
            .map_or(self.text.len(), |(i, _)| i);
        if let Some(span) = self
            .spans
            .iter()
            .find(|s| s.sent <= byte && byte < s.sent + s.len)
        {
            return Some(ScriptOffset {
                job: span.job,
                offset: span.script + (byte - span.sent),
            });
        }
        let span = self
            .spans
            .iter()
            .rev()
            .find(|s| s.sent + s.len <= byte && s.len > 0)?;
        Some(ScriptOffset {
            job: span.job,
            offset: span.script + span.len - 1,
        })
    }
}

impl<'s> Batch<'s> {
    pub(super) fn new(markers: Markers) -> Batch<'s> {
        Batch {
            items: Vec::new(),
            markers,
            piece_bytes: PIECE_BYTES,
        }
    }

    /// The same batch cut at `bytes` (tests cut small scripts into pieces).
    #[cfg(test)]
    fn cut_at(mut self, bytes: usize) -> Batch<'s> {
        self.piece_bytes = bytes;
        self
    }

    pub(super) fn markers(&self) -> &Markers {
        &self.markers
    }

    /// Appends the runner's own statements.
    pub(super) fn push(&mut self, sql: &str) {
        match self.items.last_mut() {
            Some(Item::Text(text)) => text.push_str(sql),
            _ => self.items.push(Item::Text(sql.to_owned())),
        }
    }

    /// Appends `script` (job `job`) with its markers, then `prefix` before its first statement
    /// that is not a leading `SET TRANSACTION` when it is the batch's `first` script, or at its
    /// start otherwise. `tail` (`, call, ...` or empty) is appended to the `SELECT` of the
    /// marker after the script's last statement: the runner's calls that go right after the
    /// script cost no statement of their own.
    ///
    /// The script is sent as written: a marker goes right after the last token of a
    /// statement, and the user's own `;` ends it; nothing of the user's text is moved, dropped
    /// or reordered, but for the `SET TRANSACTION` statements that open a script, which go
    /// before the runner's own settings, since PostgreSQL takes them only before the
    /// transaction's first query. No marker precedes a `SET TRANSACTION` statement, for the
    /// same reason.
    pub(super) fn script(
        &mut self,
        job: usize,
        script: &'s Script,
        first: bool,
        prefix: &str,
        tail: &str,
    ) {
        self.items.push(Item::Script(ScriptItem {
            job,
            script,
            first,
            prefix: prefix.to_owned(),
            tail: tail.to_owned(),
        }));
    }

    /// Ends the batch: `COMMIT`, then, outside the transaction, the last marker's release with
    /// the backend pid as the last row.
    pub(super) fn finish(&mut self) {
        self.finish_with("", "");
    }

    /// [`Batch::finish`] with `after_commit` (whole statements) between the `COMMIT` and the
    /// last statement, and `calls` (`set_config(...), ...` or empty) added to that last
    /// statement's `SELECT`, after the pid and the release.
    pub(super) fn finish_with(&mut self, after_commit: &str, calls: &str) {
        self.items.push(Item::Finish {
            after_commit: after_commit.to_owned(),
            calls: calls.to_owned(),
        });
    }

    /// The batch's pieces, made one at a time as they are sent.
    pub(super) fn pieces(&self) -> Pieces<'_, 's> {
        Pieces {
            batch: self,
            next_item: 0,
            cursor: None,
            points: Points::default(),
        }
    }
}

/// The pieces of a batch, one at a time, and what their markers mean so far.
pub(super) struct Pieces<'b, 's> {
    batch: &'b Batch<'s>,
    next_item: usize,
    /// Inside the script item `next_item - 1`.
    cursor: Option<Cursor>,
    /// What marker `n` means, at index `n - 1`, for the pieces made so far.
    points: Points,
}

impl<'s> Pieces<'_, 's> {
    /// Whether the pieces made so far are the whole batch.
    pub(super) fn is_done(&self) -> bool {
        self.cursor.is_none() && self.next_item == self.batch.items.len()
    }

    /// The next query string; `None` when the batch is all sent.
    pub(super) fn next_piece(&mut self) -> Option<Piece<'s>> {
        let limit = self.batch.piece_bytes;
        let mut piece = Piece::new();
        loop {
            let Some(cursor) = &self.cursor else {
                let Some(item) = self.batch.items.get(self.next_item) else {
                    return (piece.len() > 0).then_some(piece);
                };
                self.next_item += 1;
                match item {
                    Item::Text(text) => piece.push(text),
                    Item::Script(item) => self.open(item, &mut piece),
                    Item::Finish {
                        after_commit,
                        calls,
                    } => self.finish(&mut piece, after_commit, calls),
                }
                continue;
            };
            let Some(Item::Script(item)) = self
                .next_item
                .checked_sub(1)
                .and_then(|i| self.batch.items.get(i))
            else {
                self.cursor = None;
                continue;
            };
            let Some(unit) = cursor.unit(item.script) else {
                self.cursor = None;
                continue;
            };
            let (at, sent_alone) = (cursor.at, cursor.sent_alone);
            if !sent_alone {
                let len = unit.end.saturating_sub(at);
                if piece.len() > 0 && (piece.len() >= limit || len >= limit) {
                    return Some(piece);
                }
                if len >= limit {
                    if let Some(cursor) = &mut self.cursor {
                        cursor.sent_alone = true;
                    }
                    return Some(Piece::borrowed(item.job, item.script, at, unit.end));
                }
                piece.copy(item.job, item.script, at, unit.end);
            }
            piece.push(if unit.last { "\n;\n" } else { ";\n" });
            self.mark(&mut piece, item.job, unit.done);
            if unit.last {
                piece.push(&item.tail);
                piece.push(";\n");
            }
            if let Some(cursor) = &mut self.cursor {
                cursor.passed(&unit);
            }
        }
    }

    /// Starts a script item: its leading `SET TRANSACTION`s and prefix, and the first marker.
    fn open(&mut self, item: &ScriptItem<'s>, piece: &mut Piece<'s>) {
        let (job, script) = (item.job, item.script);
        let ranges = script.ranges();
        let set_transaction: Vec<bool> = script.statements().map(is_set_transaction).collect();
        let mut at = 0;
        let mut from = 0;
        if item.first {
            let leading = set_transaction.iter().take_while(|s| **s).count();
            if leading > 0 {
                at = ranges[leading - 1].1;
                piece.copy(job, script, 0, at);
                piece.push(";\n");
            }
            piece.push(&item.prefix);
            if leading > 0 && leading < ranges.len() {
                self.mark(piece, job, leading);
                piece.push(";\n");
            }
            from = leading;
        } else {
            piece.push(&item.prefix);
            if !set_transaction.first().copied().unwrap_or(false) {
                self.mark(piece, job, 0);
                piece.push(";\n");
            }
        }
        self.cursor = Some(Cursor {
            set_transaction,
            next: from,
            at,
            sent_alone: false,
            finished: false,
        });
    }

    /// `COMMIT`, `after_commit`, then the last marker's release with the backend pid as the
    /// last row, and `calls`.
    fn finish(&mut self, piece: &mut Piece<'_>, after_commit: &str, calls: &str) {
        let last = u32::try_from(self.points.len()).unwrap_or(u32::MAX);
        piece.push("COMMIT;\n");
        piece.push(after_commit);
        piece.push(&self.batch.markers.release_with_pid(last));
        if !calls.is_empty() {
            piece.push(", ");
            piece.push(calls);
        }
        piece.push(";");
    }

    /// Appends the marker of a point of progress (without a `;`).
    fn mark(&mut self, piece: &mut Piece<'_>, job: usize, done: usize) {
        let previous = u32::try_from(self.points.len()).unwrap_or(u32::MAX);
        self.points.push(Point { job, done });
        let value = previous.saturating_add(1);
        piece.push(
            &self
                .batch
                .markers
                .take(value, (previous > 0).then_some(previous)),
        );
    }

    /// Which job failed and where, `piece` being the piece the server failed on: the
    /// server's position when it gave one (a syntax error, found before anything of the piece
    /// ran, or an error located in a statement), else the marker held (`held`: none means
    /// before the first). The location is `None` when the failure came after the job's last
    /// statement; the whole answer is `None` when the markers could not be read or the
    /// connection failed: the session is gone, and what it knew with it.
    pub(super) fn failed_at(
        &self,
        jobs: &[Job<'_>],
        held: Result<Option<u32>, DbError>,
        source: &DbError,
        piece: &Piece<'_>,
    ) -> Option<FailedAt> {
        if let Some(ScriptOffset { job, offset }) =
            source.position.and_then(|p| piece.script_offset(p))
        {
            if let Some(script) = jobs.get(job).map(|j| j.script) {
                let ranges = script.ranges();
                let number = ranges
                    .iter()
                    .take_while(|r| r.0 <= offset)
                    .count()
                    .clamp(1, ranges.len().max(1));
                let statement = (!ranges.is_empty()).then(|| Location {
                    number,
                    total: ranges.len(),
                    line: script.line_at(offset),
                });
                return Some(FailedAt { job, statement });
            }
        }
        if source.is_connection_error() {
            return None;
        }
        let Point { job, done } = held
            .ok()?
            .and_then(|value| self.points.get((value as usize).checked_sub(1)?))
            .unwrap_or(Point::START);
        let script = jobs.get(job)?.script;
        let statement = script.ranges().get(done).map(|range| Location {
            number: done + 1,
            total: script.ranges().len(),
            line: script.line_at(range.0),
        });
        Some(FailedAt { job, statement })
    }
}

/// Where the pieces are inside a script item.
struct Cursor {
    /// Whether each statement is a `SET TRANSACTION`.
    set_transaction: Vec<bool>,
    /// The next statement the markers loop looks at.
    next: usize,
    /// Where the next unit's text starts (right after the previous marked statement).
    at: usize,
    /// The next unit's text was sent as a piece of its own; its marker is still due.
    sent_alone: bool,
    /// The script's last unit is done.
    finished: bool,
}

/// A statement of a script and what follows it in the batch: its text (with any
/// `SET TRANSACTION` right after it, which takes no marker before it), a `;` and its marker.
struct Unit {
    /// Where its text ends in the script.
    end: usize,
    /// How many statements are done after it: its marker's meaning.
    done: usize,
    /// The script's last: its text runs to the end of the file.
    last: bool,
}

impl Cursor {
    fn unit(&self, script: &Script) -> Option<Unit> {
        if self.finished {
            return None;
        }
        let ranges = script.ranges();
        let n = ranges.len();
        let mut i = self.next;
        while i + 1 < n {
            if !self.set_transaction[i + 1] {
                return Some(Unit {
                    end: ranges[i].1,
                    done: i + 1,
                    last: false,
                });
            }
            i += 1;
        }
        Some(Unit {
            end: script.sql().len(),
            done: n,
            last: true,
        })
    }

    /// `unit` is in a piece, its marker too.
    fn passed(&mut self, unit: &Unit) {
        self.at = unit.end;
        self.next = unit.done;
        self.sent_alone = false;
        self.finished = unit.last;
    }
}

/// `SET TRANSACTION ...`: PostgreSQL takes it only before the transaction's first query.
/// Read by the format crate's statement cursor, as the loader reads statements.
fn is_set_transaction(statement: &str) -> bool {
    migrations_format::sql::is_set_transaction(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbErrorKind;
    use crate::embedded::Migration;
    use crate::plan::Direction;

    const SQL: &str = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n\
                       CREATE TABLE a (x int) -- why\n;\n\
                       INSERT INTO a VALUES (1);\n";

    fn script() -> Script {
        let ranges: &'static [(usize, usize)] =
            Box::leak(migrations_format::statement_ranges(SQL).into_boxed_slice());
        let script = Script::__new(SQL, "", false, None, None, ranges, None, "1_a.up.sql", None);
        let statements: Vec<&str> = script.statements().collect();
        assert_eq!(
            statements,
            [
                "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                "CREATE TABLE a (x int)",
                "INSERT INTO a VALUES (1)"
            ]
        );
        script
    }

    /// Every piece of `batch`, and the points made.
    fn pieces(batch: &Batch<'_>) -> (Vec<String>, Vec<Point>) {
        let mut pieces = batch.pieces();
        let mut texts = Vec::new();
        while let Some(piece) = pieces.next_piece() {
            texts.push(piece.text().to_owned());
        }
        (texts, pieces.points.to_vec())
    }

    fn error(position: Option<u32>) -> DbError {
        DbError {
            kind: DbErrorKind::Server,
            code: Some("42601".into()),
            message: String::new(),
            detail: None,
            hint: None,
            position,
        }
    }

    /// The whole shape of a transactional batch: the user's text as written, the leading SET
    /// TRANSACTION before the runner's settings, a marker after each statement closed by the
    /// user's own `;`, and the backend pid as the first column of the last row (what
    /// `check_backend` reads).
    #[test]
    fn batch_shape() {
        let script = script();
        let mut batch = Batch::new(Markers { key: -7 });
        batch.push("BEGIN;\n");
        batch.script(0, &script, true, "SET LOCAL lock_timeout = '5ms';\n", "");
        batch.push("INSERT INTO history;\n");
        batch.finish();
        let (texts, points) = pieces(&batch);
        assert_eq!(
            texts,
            ["BEGIN;\n\
             SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n\
             SET LOCAL lock_timeout = '5ms';\n\
             SELECT pg_try_advisory_lock(-7, 1);\n\
             ;\n\
             CREATE TABLE a (x int);\n\
             SELECT pg_try_advisory_lock(-7, 2), pg_advisory_unlock(-7, 1) -- why\n;\n\
             INSERT INTO a VALUES (1);\n\
             \n;\n\
             SELECT pg_try_advisory_lock(-7, 3), pg_advisory_unlock(-7, 2);\n\
             INSERT INTO history;\n\
             COMMIT;\n\
             SELECT pg_backend_pid(), pg_advisory_unlock(-7, 3);"]
        );
        let point = |done| Point { job: 0, done };
        assert_eq!(points, [point(1), point(2), point(3)]);
    }

    /// Cut small: a piece ends between two statements once it is long enough, a statement as
    /// long as a piece goes alone, straight from the script, and the pieces together are the
    /// one query string of an uncut batch.
    #[test]
    fn a_long_batch_is_cut_between_statements() {
        let script = script();
        let build = |cut: usize| {
            let mut batch = Batch::new(Markers { key: -7 }).cut_at(cut);
            batch.push("BEGIN;\n");
            batch.script(0, &script, true, "", "");
            batch.finish();
            pieces(&batch)
        };
        let (whole, points) = build(PIECE_BYTES);
        let (cut, cut_points) = build(20);
        assert_eq!(whole.len(), 1);
        assert_eq!(cut.concat(), whole[0]);
        assert_eq!(cut_points, points);
        assert_eq!(
            cut,
            [
                "BEGIN;\nSET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n\
                 SELECT pg_try_advisory_lock(-7, 1);\n",
                ";\nCREATE TABLE a (x int)",
                ";\nSELECT pg_try_advisory_lock(-7, 2), pg_advisory_unlock(-7, 1)",
                " -- why\n;\nINSERT INTO a VALUES (1);\n",
                "\n;\nSELECT pg_try_advisory_lock(-7, 3), pg_advisory_unlock(-7, 2);\n\
                 COMMIT;\nSELECT pg_backend_pid(), pg_advisory_unlock(-7, 3);"
            ]
        );
    }

    /// Points kept as runs read back as pushed, across a skipped statement and a new job.
    #[test]
    fn points_read_back_as_pushed() {
        let pushed = [(0, 1), (0, 2), (0, 4), (0, 5), (1, 0), (1, 1), (1, 2)]
            .map(|(job, done)| Point { job, done });
        let mut points = Points::default();
        for point in pushed {
            points.push(point);
        }
        assert_eq!(points.runs.len(), 3);
        assert_eq!(points.len(), pushed.len());
        assert_eq!(points.to_vec(), pushed);
        assert_eq!(points.get(pushed.len()), None);
    }

    #[test]
    fn positions_map_back_to_the_file() {
        let script = script();
        let job = Job {
            migration: &Migration::__new(1, "1", "a", script.clone(), None),
            script: &script,
            direction: Direction::Up,
            detail: None,
        };
        let jobs = std::slice::from_ref(&job);
        let mut batch = Batch::new(Markers { key: -7 });
        batch.push("BEGIN;\n");
        batch.script(0, &script, true, "", "");
        batch.finish();
        let mut pieces = batch.pieces();
        let piece = pieces.next_piece().unwrap();
        // `VALUES` of statement 3, line 4, as the server counts (characters from 1).
        let at = piece.text().find("VALUES").unwrap() as u32 + 1;
        let found = pieces.failed_at(jobs, Ok(None), &error(Some(at)), &piece);
        let location = |number, line| Location {
            number,
            total: 3,
            line,
        };
        let at = |statement| Some(FailedAt { job: 0, statement });
        assert_eq!(found, at(Some(location(3, 4))));
        // No position: the marker held says how far it got.
        let found = pieces.failed_at(jobs, Ok(Some(1)), &error(None), &piece);
        assert_eq!(found, at(Some(location(2, 2))));
        let found = pieces.failed_at(jobs, Ok(None), &error(None), &piece);
        assert_eq!(found, at(Some(location(1, 1))));
        let found = pieces.failed_at(jobs, Ok(Some(3)), &error(None), &piece);
        assert_eq!(found, at(None), "after the last statement");
        // Markers unreadable: not known.
        let gone = DbError {
            kind: DbErrorKind::Connection,
            code: None,
            ..error(None)
        };
        let found = pieces.failed_at(jobs, Err(gone.clone()), &gone, &piece);
        assert_eq!(found, None);
    }

    /// A position in a later piece is counted from that piece's start, and in a statement
    /// sent alone from the statement's.
    #[test]
    fn positions_in_a_later_piece_map_back_to_the_file() {
        let script = script();
        let job = Job {
            migration: &Migration::__new(1, "1", "a", script.clone(), None),
            script: &script,
            direction: Direction::Up,
            detail: None,
        };
        let jobs = std::slice::from_ref(&job);
        let mut batch = Batch::new(Markers { key: -7 }).cut_at(20);
        batch.push("BEGIN;\n");
        batch.script(0, &script, true, "", "");
        batch.finish();
        let mut pieces = batch.pieces();
        let mut found = Vec::new();
        while let Some(piece) = pieces.next_piece() {
            for word in ["TABLE", "VALUES"] {
                if let Some(at) = piece.text().find(word) {
                    let at = Some(at as u32 + 1);
                    found.push(pieces.failed_at(jobs, Ok(None), &error(at), &piece));
                }
            }
        }
        let at = |number, line| {
            Some(FailedAt {
                job: 0,
                statement: Some(Location {
                    number,
                    total: 3,
                    line,
                }),
            })
        };
        assert_eq!(found, [at(2, 2), at(3, 4)]);
    }
}
