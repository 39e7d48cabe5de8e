//! The stored ACLs, indexed by resource so that authorizing a request touches only the ACLs that can
//! apply to its resource.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::filter::AclFilter;
use super::model::{
    AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD_RESOURCE,
};

/// The part of a binding that is not its resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ace {
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: Operation,
    pub(crate) permission: Permission,
}

type ByName = BTreeMap<String, BTreeSet<Ace>>;

/// Every ACL of one resource type, split by pattern type because the two are looked up differently:
/// LITERAL by exact name (and `*`), PREFIXED by the prefixes of the resource name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TypeIndex {
    literal: ByName,
    prefixed: ByName,
}

/// A set of ACL bindings. Serializes as `{"acls":[binding, ...]}` in binding order, so the file it is
/// saved to is stable and diffable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclSet {
    by_type: BTreeMap<ResourceType, TypeIndex>,
    /// Bindings whose pattern type is neither LITERAL nor PREFIXED. CreateAcls never stores one, but a
    /// hand-edited file might hold one; keeping it (inert: it matches no resource) means a load/save
    /// round trip never drops data silently.
    other: BTreeSet<AclBinding>,
    len: usize,
}

impl AclSet {
    /// Idempotent, as Kafka's CreateAcls is for an identical binding; true if the binding is new. It does
    /// not validate: CreateAcls calls `validate_new_binding` first, as Kafka does.
    pub fn add(&mut self, b: AclBinding) -> bool {
        let AclBinding {
            resource_type,
            resource_name,
            pattern_type,
            principal,
            host,
            operation,
            permission,
        } = b;
        let ace = Ace {
            principal,
            host,
            operation,
            permission,
        };
        if !is_indexed(pattern_type) {
            let added =
                self.other
                    .insert(binding(resource_type, &resource_name, pattern_type, &ace));
            self.len += usize::from(added);
            return added;
        }
        let index = self.by_type.entry(resource_type).or_default();
        let names = if pattern_type == PatternType::Prefixed {
            &mut index.prefixed
        } else {
            &mut index.literal
        };
        let added = names.entry(resource_name).or_default().insert(ace);
        self.len += usize::from(added);
        added
    }

    /// Removes and returns (sorted) every binding the filter matches, as DeleteAcls does.
    pub fn remove_matching(&mut self, f: &AclFilter) -> Vec<AclBinding> {
        let removed = self.matching(f);
        for b in &removed {
            self.remove(b);
        }
        removed
    }

    /// Every binding the filter matches, sorted (so bindings of one resource pattern are adjacent).
    pub fn matching(&self, f: &AclFilter) -> Vec<AclBinding> {
        let mut out = Vec::new();
        for (&rt, index) in &self.by_type {
            if f.resource_type != ResourceType::Any && f.resource_type != rt {
                continue;
            }
            let groups = [
                (PatternType::Literal, &index.literal),
                (PatternType::Prefixed, &index.prefixed),
            ];
            for (pattern, names) in groups {
                let mut collect = |name: &str, aces: &BTreeSet<Ace>| {
                    for ace in aces {
                        let b = binding(rt, name, pattern, ace);
                        if f.matches(&b) {
                            out.push(b);
                        }
                    }
                };
                // Narrow to the names that can match; `f.matches` above stays the sole judge.
                match (&f.resource_name, f.pattern_type) {
                    (Some(name), PatternType::Match) if pattern == PatternType::Literal => {
                        if let Some(aces) = names.get(name.as_str()) {
                            collect(name, aces);
                        }
                        if name != WILDCARD_RESOURCE {
                            if let Some(aces) = names.get(WILDCARD_RESOURCE) {
                                collect(WILDCARD_RESOURCE, aces);
                            }
                        }
                    }
                    (Some(name), PatternType::Match) => {
                        let _ = visit_prefixes(names, name, |n, aces| {
                            collect(n, aces);
                            ControlFlow::Continue(())
                        });
                    }
                    (Some(name), _) => {
                        if let Some(aces) = names.get(name.as_str()) {
                            collect(name, aces);
                        }
                    }
                    (None, _) => {
                        for (name, aces) in names {
                            collect(name, aces);
                        }
                    }
                }
            }
        }
        out.extend(self.other.iter().filter(|b| f.matches(b)).cloned());
        out.sort();
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every binding, sorted.
    pub fn iter(&self) -> impl Iterator<Item = AclBinding> {
        self.matching(&AclFilter::any()).into_iter()
    }

    fn remove(&mut self, b: &AclBinding) {
        if !is_indexed(b.pattern_type) {
            self.len -= usize::from(self.other.remove(b));
            return;
        }
        let Some(index) = self.by_type.get_mut(&b.resource_type) else {
            return;
        };
        let names = if b.pattern_type == PatternType::Prefixed {
            &mut index.prefixed
        } else {
            &mut index.literal
        };
        let Some(aces) = names.get_mut(b.resource_name.as_str()) else {
            return;
        };
        let ace = Ace {
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation,
            permission: b.permission,
        };
        self.len -= usize::from(aces.remove(&ace));
        // An empty entry left behind would make the resource look as if it had ACLs, which changes the
        // allow.everyone.if.no.acl.found outcome.
        if aces.is_empty() {
            names.remove(b.resource_name.as_str());
        }
        if index.literal.is_empty() && index.prefixed.is_empty() {
            self.by_type.remove(&b.resource_type);
        }
    }

    /// Calls `f` with the ACEs of every ACL whose pattern covers the resource: LITERAL with the same
    /// name, LITERAL `*`, and PREFIXED with a prefix of the name; stops early when `f` breaks.
    pub(crate) fn for_each_applicable<'a>(
        &'a self,
        resource_type: ResourceType,
        resource_name: &str,
        mut f: impl FnMut(&'a Ace) -> ControlFlow<()>,
    ) {
        let Some(index) = self.by_type.get(&resource_type) else {
            return;
        };
        let mut each = |aces: &'a BTreeSet<Ace>| aces.iter().try_for_each(&mut f);
        if let Some(aces) = index.literal.get(resource_name) {
            if each(aces).is_break() {
                return;
            }
        }
        if resource_name != WILDCARD_RESOURCE {
            if let Some(aces) = index.literal.get(WILDCARD_RESOURCE) {
                if each(aces).is_break() {
                    return;
                }
            }
        }
        let _ = visit_prefixes(&index.prefixed, resource_name, |_, aces| each(aces));
    }
}

fn is_indexed(pattern: PatternType) -> bool {
    matches!(pattern, PatternType::Literal | PatternType::Prefixed)
}

fn binding(rt: ResourceType, name: &str, pattern: PatternType, ace: &Ace) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.to_string(),
        pattern_type: pattern,
        principal: ace.principal.clone(),
        host: ace.host.clone(),
        operation: ace.operation,
        permission: ace.permission,
    }
}

/// Visits every key of `names` that is a prefix of `name` (longest first) in at most 2 × (number of
/// prefixes of `name`) ordered lookups, however many keys the map holds.
///
/// It walks down from `name` in key order. A key that is a prefix is visited and the walk continues
/// below it. A key that is not a prefix first differs from `name` at byte `c` (and is smaller there), so
/// no longer prefix of `name` can lie between it and the previous bound: the walk jumps to `name[..c]`,
/// skipping every unrelated key in between (this is Kafka's `StandardAuthorizerData.checkSection`
/// jump, done in plain byte order).
fn visit_prefixes<'a>(
    names: &'a ByName,
    name: &str,
    mut f: impl FnMut(&'a str, &'a BTreeSet<Ace>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut upper: Bound<&str> = Bound::Included(name);
    loop {
        let Some((key, aces)) = names.range::<str, _>((Bound::Unbounded, upper)).next_back() else {
            return ControlFlow::Continue(());
        };
        if name.starts_with(key.as_str()) {
            f(key, aces)?;
            upper = Bound::Excluded(key.as_str());
        } else {
            let mut common = key
                .bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            // A key is a whole string, so any key that is a prefix of `name` ends on a char boundary.
            while !name.is_char_boundary(common) {
                common -= 1;
            }
            upper = Bound::Included(name.get(..common).unwrap_or_default());
        }
    }
}

impl Serialize for AclSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let acls: Vec<AclBinding> = self.iter().collect();
        let mut st = s.serialize_struct("AclSet", 1)?;
        st.serialize_field("acls", &acls)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for AclSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Repr {
            acls: Vec<AclBinding>,
        }
        let repr = Repr::deserialize(d)?;
        let mut set = AclSet::default();
        for b in repr.acls {
            set.add(b);
        }
        Ok(set)
    }
}
