//! What a role's check of its prefixes found: the same counts for every
//! role, so that `pinhole blobs check` can add them up.

/// Keys kept as examples for the operator, of each kind.
const EXAMPLES: usize = 20;

/// A role's store against its references.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Objects under the prefixes the role owns.
    pub objects: u64,
    /// Objects with a reference.
    pub referenced: u64,
    /// Objects without one, older than the grace period.
    pub orphaned: u64,
    /// Objects without one, younger than the grace period (in flight).
    pub recent: u64,
    /// Orphans removed (with `repair`).
    pub removed: u64,
    /// References whose object is not stored.
    pub missing: u64,
    /// Objects under the role's prefixes whose key it does not know (left
    /// alone).
    pub other: u64,
    /// Up to 20 orphaned keys, for the operator.
    pub orphan_examples: Vec<String>,
    /// Up to 20 missing keys.
    pub missing_examples: Vec<String>,
}

impl CheckReport {
    /// Counts an orphan.
    pub fn orphan(&mut self, key: &str) {
        self.orphaned += 1;
        if self.orphan_examples.len() < EXAMPLES {
            self.orphan_examples.push(key.to_owned());
        }
    }

    /// Counts a reference whose object is not stored.
    pub fn missing(&mut self, key: &str) {
        self.missing += 1;
        if self.missing_examples.len() < EXAMPLES {
            self.missing_examples.push(key.to_owned());
        }
    }

    /// Adds another role's counts (and examples, up to the limit).
    pub fn add(&mut self, other: &CheckReport) {
        self.objects += other.objects;
        self.referenced += other.referenced;
        self.orphaned += other.orphaned;
        self.recent += other.recent;
        self.removed += other.removed;
        self.missing += other.missing;
        self.other += other.other;
        for (mine, theirs) in [
            (&mut self.orphan_examples, &other.orphan_examples),
            (&mut self.missing_examples, &other.missing_examples),
        ] {
            let room = EXAMPLES.saturating_sub(mine.len());
            mine.extend(theirs.iter().take(room).cloned());
        }
    }

    /// Nothing orphaned is left and nothing referenced is missing.
    pub fn clean(&self) -> bool {
        self.missing == 0 && self.orphaned == self.removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_add_up_and_keep_twenty_examples() {
        let mut a = CheckReport::default();
        for i in 0..15 {
            a.orphan(&format!("originals/{i}"));
        }
        a.objects = 15;
        let mut b = CheckReport::default();
        for i in 0..15 {
            b.orphan(&format!("derivatives/{i}"));
        }
        b.missing("derivatives/m");
        b.objects = 16;
        a.add(&b);
        assert_eq!((a.objects, a.orphaned, a.missing), (31, 30, 1));
        assert_eq!(a.orphan_examples.len(), 20);
        assert_eq!(a.missing_examples, ["derivatives/m"]);
        assert!(!a.clean());
    }
}
