//! Named counters (`counter NAME {}` objects of a table), which rules add to by name: drops
//! counted by reason, readable with `nft list counters table FAMILY TABLE`.

use super::msg::NLM_F_CREATE;
use super::set::Transaction;
use crate::attr::AttrWriter;

const NFT_MSG_NEWOBJ: u16 = 18;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFT_OBJECT_COUNTER: u32 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

impl Transaction<'_> {
    /// Creates a named counter unless it exists (an existing one keeps its values).
    pub fn add_counter(&mut self, name: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_OBJ_TABLE, &self.table.name)
            .str(NFTA_OBJ_NAME, name)
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER)
            .nest(NFTA_OBJ_DATA, |d| {
                d.be64(NFTA_COUNTER_BYTES, 0).be64(NFTA_COUNTER_PACKETS, 0);
            });
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_NEWOBJ, NLM_F_CREATE, family, &a);
        self
    }
}
