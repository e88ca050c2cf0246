//! Which MAC the pod interface gets: `CNI_ARGS MAC=`, then `runtimeConfig.mac`, then `args.cni.mac`
//! (the reference bridge's order), else a random locally administered one that we pick ourselves so
//! the result needs no read-back from the kernel.

use cni::{CmdArgs, Error, Result};
use kernel::MacAddr;

pub fn requested(a: &CmdArgs) -> Result<Option<MacAddr>> {
    let from_args = a
        .args
        .get("MAC")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let from_runtime = a
        .conf
        .runtime("mac")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let from_cni_args = a
        .conf
        .args_cni("mac")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let Some(text) = from_args.or(from_runtime).or(from_cni_args) else {
        return Ok(None);
    };
    let mac: MacAddr = text
        .parse()
        .map_err(|_| Error::invalid_config(format!("invalid MAC address {text:?}")))?;
    if mac.0[0] & 1 == 1 {
        return Err(Error::invalid_config(format!(
            "MAC address {text} is multicast; a pod needs a unicast one"
        )));
    }
    Ok(Some(mac))
}

pub fn random() -> MacAddr {
    let mut b = [0u8; 6];
    crate::random::fill(&mut b);
    MacAddr::local_from(b)
}
