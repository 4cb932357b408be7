//! Values with a rule of their own, checked as they are read: an integer within a range, a
//! non-negative number up to a bound, a thinking budget. The toml deserializer puts the
//! value's span on any error raised here, so each is located without more code.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An integer within `LO..=HI` (TOML integers are 64-bit signed; larger ones are too large).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct In<const LO: u64, const HI: u64>(pub u64);

impl<const LO: u64, const HI: u64> In<LO, HI> {
    /// For `#[serde(deserialize_with = "In::<LO, HI>::de")]`; `HI` fits `T`.
    pub fn de<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
        let n = Self::deserialize(d)?.0;
        T::try_from(n).map_err(|_| de::Error::custom(format!("{n} is too large")))
    }

    /// As [`In::de`], for an optional key (`#[serde(default)]` too).
    pub fn some<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
        Self::de(d).map(Some)
    }

    fn range() -> String {
        format!("allowed range {LO}..={HI}")
    }

    fn check<E: de::Error>(n: i128) -> Result<Self, E> {
        if n > i128::from(i64::MAX) {
            return Err(E::custom(format!("{n} is too large ({})", Self::range())));
        }
        u64::try_from(n)
            .ok()
            .filter(|n| (LO..=HI).contains(n))
            .map(In)
            .ok_or_else(|| E::custom(format!("{n} is out of range ({})", Self::range())))
    }
}

impl<'de, const LO: u64, const HI: u64> Deserialize<'de> for In<LO, HI> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const LO: u64, const HI: u64>;
        impl<const LO: u64, const HI: u64> Visitor<'_> for V<LO, HI> {
            type Value = In<LO, HI>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer ({})", In::<LO, HI>::range())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                In::check(n.into())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                In::check(n.into())
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Self::Value, E> {
                In::check(n)
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Self::Value, E> {
                In::check(i128::try_from(n).unwrap_or(i128::MAX))
            }
        }
        d.deserialize_any(V::<LO, HI>)
    }
}

/// A number (integer or float) within `0..=MAX`: a price, a spend limit, a multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Upto<const MAX: u64>(pub f64);

impl<const MAX: u64> Upto<MAX> {
    pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Self::deserialize(d).map(|n| n.0)
    }

    pub fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Self::de(d).map(Some)
    }

    fn check<E: de::Error>(n: f64, shown: &dyn fmt::Display) -> Result<Self, E> {
        if n.is_finite() && (0.0..=MAX as f64).contains(&n) {
            Ok(Upto(n))
        } else {
            Err(E::custom(format!(
                "{shown} is out of range (allowed range 0..={MAX})"
            )))
        }
    }
}

impl<'de, const MAX: u64> Deserialize<'de> for Upto<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: u64>;
        impl<const MAX: u64> Visitor<'_> for V<MAX> {
            type Value = Upto<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a number (allowed range 0..={MAX})")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Upto::check(n as f64, &n)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Upto::check(n as f64, &n)
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Self::Value, E> {
                Upto::check(f64::INFINITY, &n)
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Self::Value, E> {
                Upto::check(f64::INFINITY, &n)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Upto::check(n, &n)
            }
        }
        d.deserialize_any(V::<MAX>)
    }
}

/// Gemini's thinking budget: -1 (dynamic) or `0..=MAX_THINKING_BUDGET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(pub i64);

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::systems::MAX_THINKING_BUDGET;
        struct V;
        impl V {
            fn check<E: de::Error>(n: i128) -> Result<Budget, E> {
                i64::try_from(n)
                    .ok()
                    .filter(|n| *n == -1 || (0..=MAX_THINKING_BUDGET).contains(n))
                    .map(Budget)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{n} is out of range (-1 for dynamic, or 0..={MAX_THINKING_BUDGET})"
                        ))
                    })
            }
        }
        impl Visitor<'_> for V {
            type Value = Budget;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer (-1 for dynamic, 0 for off, or a token count)")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Budget, E> {
                V::check(n.into())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Budget, E> {
                V::check(n.into())
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Budget, E> {
                V::check(n)
            }
        }
        d.deserialize_any(V)
    }
}

/// The field names of a serde-derived struct, as its `Deserialize` declares them: the
/// sections a part of the config owns, from its type alone.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use std::cell::Cell;
    struct Grab<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Grab<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("fields taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let cell = Cell::new(&[][..]);
    // The error is the point: the struct's visitor is never run.
    let _ = T::deserialize(Grab(&cell));
    cell.get()
}
