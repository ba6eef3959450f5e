//! Reading the tables from either kind of redb transaction: a read
//! transaction (the last commit) or the state machine's open write
//! transaction (everything applied since), so one query serves both.

use redb::{
    Key, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, TableError, Value, WriteTransaction,
};

/// A transaction the tables can be read through.
pub trait Reader {
    type Table<'a, K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>
        + ReadableTableMetadata
    where
        Self: 'a;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>, TableError>;
}

impl Reader for ReadTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, TableError> {
        ReadTransaction::open_table(self, def)
    }
}

/// Reads through a write transaction see its own changes. A table may be
/// open only once at a time in a write transaction: a reader must drop
/// one before it opens the same table again.
impl Reader for WriteTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = Table<'a, K, V>;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>, TableError> {
        WriteTransaction::open_table(self, def)
    }
}
