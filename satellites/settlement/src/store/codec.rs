//! Fixed little-endian layouts of ledger records as redb values. Written by hand because
//! they are three small records read back in one place; a layout change bumps
//! [`LAYOUT_VERSION`], which the store checks on open.

use crate::ledger::{
    AccountIdx, AccountKind, AccountRecord, Balances, Hold, PendingState, StoredTransfer, Transfer,
    TransferKind,
};
use crate::store::StoreError;

/// Version of these layouts, stored in the meta table.
pub(crate) const LAYOUT_VERSION: u64 = 1;

/// Bytes of an encoded transfer.
pub(crate) const TRANSFER_BYTES: usize = 4 + 4 + 8 + 1 + 16 + 1 + 2 + 8 + 4 + 8 + 1;

/// Bytes of an encoded hold.
pub(crate) const HOLD_BYTES: usize = 4 + 8 + 8;

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        if self.bytes.len() < N {
            return Err(StoreError::Corrupt { what: self.what, detail: "record too short".into() });
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn u128(&mut self) -> Result<u128, StoreError> {
        Ok(u128::from_le_bytes(self.take()?))
    }
    fn text(&mut self) -> Result<String, StoreError> {
        let len = self.u16()? as usize;
        if self.bytes.len() < len {
            return Err(StoreError::Corrupt { what: self.what, detail: "text past the end".into() });
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(head.to_vec())
            .map_err(|_| StoreError::Corrupt { what: self.what, detail: "text is not UTF-8".into() })
    }
    fn bad(&self, detail: String) -> StoreError {
        StoreError::Corrupt { what: self.what, detail }
    }
}

pub(crate) fn encode_transfer(t: &StoredTransfer, out: &mut [u8; TRANSFER_BYTES]) {
    let x = &t.transfer;
    let (tag, payload): (u8, u128) = match x.kind {
        TransferKind::Posted => (0, 0),
        TransferKind::Pending { timeout_ns } => (1, u128::from(timeout_ns)),
        TransferKind::PostPending { pending_id } => (2, pending_id),
        TransferKind::VoidPending { pending_id } => (3, pending_id),
    };
    let state = match t.state {
        None => 0u8,
        Some(PendingState::Pending) => 1,
        Some(PendingState::Posted) => 2,
        Some(PendingState::Voided) => 3,
        Some(PendingState::Expired) => 4,
    };
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&x.debit.0.to_le_bytes());
    put(&x.credit.0.to_le_bytes());
    put(&x.amount.to_le_bytes());
    put(&[tag]);
    put(&payload.to_le_bytes());
    put(&[u8::from(x.linked)]);
    put(&x.code.to_le_bytes());
    put(&x.user_data_64.to_le_bytes());
    put(&x.user_data_32.to_le_bytes());
    put(&t.ts_ns.to_le_bytes());
    put(&[state]);
}

pub(crate) fn decode_transfer(id: u128, bytes: &[u8]) -> Result<StoredTransfer, StoreError> {
    let mut r = Reader { bytes, what: "transfer" };
    let debit = AccountIdx(r.u32()?);
    let credit = AccountIdx(r.u32()?);
    let amount = r.u64()?;
    let tag = r.u8()?;
    let payload = r.u128()?;
    let kind = match tag {
        0 => TransferKind::Posted,
        1 => TransferKind::Pending {
            timeout_ns: u64::try_from(payload).map_err(|_| r.bad("timeout past u64".into()))?,
        },
        2 => TransferKind::PostPending { pending_id: payload },
        3 => TransferKind::VoidPending { pending_id: payload },
        other => return Err(r.bad(format!("kind tag {other}"))),
    };
    let linked = r.u8()? != 0;
    let code = r.u16()?;
    let user_data_64 = r.u64()?;
    let user_data_32 = r.u32()?;
    let ts_ns = r.u64()?;
    let state = match r.u8()? {
        0 => None,
        1 => Some(PendingState::Pending),
        2 => Some(PendingState::Posted),
        3 => Some(PendingState::Voided),
        4 => Some(PendingState::Expired),
        other => return Err(r.bad(format!("state tag {other}"))),
    };
    let transfer = Transfer { id, debit, credit, amount, kind, linked, code, user_data_64, user_data_32 };
    Ok(StoredTransfer { transfer, ts_ns, state })
}

/// Rewrites the state byte of an encoded transfer.
pub(crate) fn set_state(bytes: &mut [u8; TRANSFER_BYTES], state: PendingState) {
    bytes[TRANSFER_BYTES - 1] = match state {
        PendingState::Pending => 1,
        PendingState::Posted => 2,
        PendingState::Voided => 3,
        PendingState::Expired => 4,
    };
}

pub(crate) fn encode_account(a: &AccountRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 5 * 16 + 4 + a.owner.len() + a.asset.len());
    out.push(match a.kind {
        AccountKind::User => 0,
        AccountKind::System => 1,
    });
    let b = &a.balances;
    for v in [b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted, b.held] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for text in [&a.owner, &a.asset] {
        // Owner and asset names come from the config; 64 KiB is far past any of them.
        let len = u16::try_from(text.len()).expect("account names are short");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

pub(crate) fn decode_account(idx: u32, bytes: &[u8]) -> Result<AccountRecord, StoreError> {
    let mut r = Reader { bytes, what: "account" };
    let kind = match r.u8()? {
        0 => AccountKind::User,
        1 => AccountKind::System,
        other => return Err(r.bad(format!("kind tag {other}"))),
    };
    let balances = Balances {
        debits_pending: r.u128()?,
        debits_posted: r.u128()?,
        credits_pending: r.u128()?,
        credits_posted: r.u128()?,
        held: r.u128()?,
    };
    let owner = r.text()?;
    let asset = r.text()?;
    Ok(AccountRecord { idx: AccountIdx(idx), owner, asset, kind, balances })
}

pub(crate) fn encode_hold(h: &Hold) -> [u8; HOLD_BYTES] {
    let mut out = [0u8; HOLD_BYTES];
    out[..4].copy_from_slice(&h.account.0.to_le_bytes());
    out[4..12].copy_from_slice(&h.amount.to_le_bytes());
    out[12..].copy_from_slice(&h.user_data_64.to_le_bytes());
    out
}

pub(crate) fn decode_hold(id: u128, bytes: &[u8]) -> Result<Hold, StoreError> {
    let mut r = Reader { bytes, what: "hold" };
    Ok(Hold { id, account: AccountIdx(r.u32()?), amount: r.u64()?, user_data_64: r.u64()? })
}
