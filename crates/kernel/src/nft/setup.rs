//! Committing elements into a table that may not be set up yet, without a round trip to find
//! out: the elements alone first (one batch: the usual case), and only when that fails because
//! the table, a set or a chain is missing, again with the setup in front.

use super::set::Transaction;
use super::{Nftables, Table};
use crate::error::Result;

impl Nftables {
    /// Commits `build`; when the table is not set up (ENOENT), commits `setup` + `build` in one
    /// batch. `setup` must create one chain exclusively: of two first commits racing, one sets up
    /// and the other fails with EEXIST, and then commits `build` alone.
    pub fn commit_with_setup(
        &self,
        table: &Table,
        op: &str,
        setup: impl Fn(&mut Transaction<'_>),
        build: impl Fn(&mut Transaction<'_>),
    ) -> Result<()> {
        let mut tx = self.transaction(table);
        build(&mut tx);
        match tx.commit(op) {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
        let mut tx = self.transaction(table);
        setup(&mut tx);
        build(&mut tx);
        match tx.commit(op) {
            Err(e) if e.is_exists() => {
                let mut tx = self.transaction(table);
                build(&mut tx);
                tx.commit(op)
            }
            other => other,
        }
    }
}
