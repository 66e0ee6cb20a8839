//! Test harness: a producer ledger plus a replica that re-applies every block, with invariants
//! checked after each block.
#![allow(clippy::unwrap_used, dead_code)]

pub mod year;

use ed25519_dalek::SigningKey;
use scg_ledger::merkle::sha256;
use scg_ledger::{Block, BlockOutcome, GenesisConfig, Ledger, PublicKey, Reject, Tx, TxBody};

pub const CHAIN: u64 = 7;
pub const MINT_RATE: u128 = 1_000; // base units per Wh (1 RES per MWh)
pub const ENDOWMENT: u128 = 1_000_000_000_000;

/// A deterministic key from a label.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&sha256(&[b"test-key", label.as_bytes()]))
}

pub fn pk(k: &SigningKey) -> PublicKey {
    k.verifying_key().to_bytes()
}

#[derive(Debug)]
pub struct Chain {
    pub ledger: Ledger,
    pub replica: Ledger,
    pub blocks: Vec<Block>,
    pub operator: SigningKey,
    pub treasury: SigningKey,
    pub grid: SigningKey,
    pub next_id: u128,
    pub timestamp_s: u64,
}

impl Chain {
    pub fn new() -> Self {
        Self::with(MINT_RATE, ENDOWMENT)
    }

    pub fn with(mint_rate: u128, endowment: u128) -> Self {
        let (operator, treasury, grid) = (key("operator"), key("treasury"), key("grid"));
        let config = GenesisConfig {
            chain_id: CHAIN,
            operator: pk(&operator),
            treasury: pk(&treasury),
            grid: pk(&grid),
            mint_rate_base_per_wh: mint_rate,
            treasury_endowment: endowment,
            intervals_total: scg_ledger::GenesisConfig::OPEN_ENDED,
            simulation_key_seed: None,
        };
        let (ledger, genesis) = Ledger::genesis(config, 1_000).unwrap();
        let (replica, _) = Ledger::from_genesis_block(&genesis).unwrap();
        Self {
            ledger,
            replica,
            blocks: vec![genesis],
            operator,
            treasury,
            grid,
            next_id: 1,
            timestamp_s: 1_000,
        }
    }

    pub fn nonce(&self, k: &SigningKey) -> u64 {
        self.ledger.account(&pk(k)).map_or(0, |a| a.nonce)
    }

    /// Sign with the next id and the signer's current nonce.
    pub fn sign(&mut self, k: &SigningKey, body: TxBody) -> Vec<u8> {
        let nonce = self.nonce(k);
        self.sign_with(k, nonce, body)
    }

    pub fn sign_with(&mut self, k: &SigningKey, nonce: u64, body: TxBody) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        Tx::sign(CHAIN, k, id, nonce, body)
    }

    /// Sign `bodies` by one key with consecutive nonces, for one block.
    pub fn sign_all(&mut self, k: &SigningKey, bodies: Vec<TxBody>) -> Vec<Vec<u8>> {
        let first = self.nonce(k);
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| self.sign_with(k, first + i as u64, b))
            .collect()
    }

    /// Produce a block one hour later, re-apply it on the replica, check invariants.
    pub fn block(&mut self, txs: Vec<Vec<u8>>) -> BlockOutcome {
        self.block_at(self.timestamp_s + 3_600, txs)
    }

    pub fn block_at(&mut self, timestamp_s: u64, txs: Vec<Vec<u8>>) -> BlockOutcome {
        self.timestamp_s = timestamp_s;
        let (block, outcome) = self.ledger.produce_block(timestamp_s, txs).unwrap();
        let again = self.replica.apply_block(&block).unwrap();
        assert_eq!(again, outcome, "replica disagrees");
        assert_eq!(self.replica.state_root(), self.ledger.state_root());
        self.ledger.check_invariants().unwrap();
        let decoded = Block::decode(&block.to_bytes()).unwrap();
        assert_eq!(decoded, block);
        self.blocks.push(block);
        outcome
    }

    /// One transaction in its own block.
    pub fn one(&mut self, k: &SigningKey, body: TxBody) -> Result<(), Reject> {
        let tx = self.sign(k, body);
        self.block(vec![tx]).results[0]
    }

    pub fn balance(&self, k: &SigningKey) -> u128 {
        self.ledger.account(&pk(k)).map_or(0, |a| a.balance)
    }

    pub fn add_member(&mut self, label: &str) -> SigningKey {
        let m = key(label);
        let op = self.operator.clone();
        self.one(&op, TxBody::RegisterMember { member: pk(&m) })
            .unwrap();
        m
    }

    pub fn add_meter(
        &mut self,
        member: &SigningKey,
        label: &str,
        device: scg_ledger::DeviceType,
    ) -> SigningKey {
        let m = key(label);
        let op = self.operator.clone();
        self.one(
            &op,
            TxBody::RegisterMeter {
                meter: pk(&m),
                member: pk(member),
                device,
            },
        )
        .unwrap();
        m
    }

    pub fn fund(&mut self, member: &SigningKey, amount: u128) {
        let t = self.treasury.clone();
        self.one(
            &t,
            TxBody::Transfer {
                to: pk(member),
                amount,
            },
        )
        .unwrap();
    }
}
