//! Item 7: pod sandbox lifecycle under containerd's CRI, podwire's conflist against the
//! reference `bridge` + `host-local` conflist, interleaved. The runtime harness (a private
//! containerd, the pause image, a CRI client) belongs to `tests/runtimes`; a `CriRunner` wraps
//! it so this module only schedules and times.

use std::time::Duration;

use crate::report::CriFigures;
use crate::subjects::Flavor;

/// Runs one RunPodSandbox + StopPodSandbox + RemovePodSandbox with the network of `flavor`.
pub trait CriRunner {
    fn cycle(&mut self, flavor: Flavor) -> Result<Duration, String>;
}

/// `cycles` lifecycles per flavor, A/B/A/B with the first alternating, after one untimed
/// warm-up each (image unpacked, bridge created).
pub fn measure(runner: &mut dyn CriRunner, cycles: usize) -> Result<CriFigures, String> {
    let flavors = [Flavor::Podwire, Flavor::Reference];
    for f in flavors {
        runner.cycle(f)?;
    }
    let mut out = CriFigures::default();
    for i in 0..cycles {
        for j in 0..2 {
            crate::scene::check_interrupted();
            let f = flavors[(i + j) % 2];
            let ms = runner.cycle(f)?.as_secs_f64() * 1e3;
            match f {
                Flavor::Podwire => out.podwire.push(ms),
                Flavor::Reference => out.reference.push(ms),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<Flavor>);

    impl CriRunner for Fake {
        fn cycle(&mut self, f: Flavor) -> Result<Duration, String> {
            self.0.push(f);
            Ok(Duration::from_millis(match f {
                Flavor::Podwire => 100,
                Flavor::Reference => 300,
            }))
        }
    }

    #[test]
    fn cycles_are_interleaved_after_a_warm_up() {
        let mut fake = Fake(Vec::new());
        let figs = measure(&mut fake, 2).unwrap();
        use Flavor::*;
        assert_eq!(
            fake.0,
            vec![Podwire, Reference, Podwire, Reference, Reference, Podwire]
        );
        assert_eq!(figs.podwire, vec![100.0, 100.0]);
        assert_eq!(figs.reference, vec![300.0, 300.0]);
    }
}
