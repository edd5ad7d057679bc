//! The impls every string-backed value type shares, written once.
//!
//! A type using [`string_type!`] is a newtype over its canonical `String` and provides
//! `fn canonicalize(value: String) -> Result<String, Error>`, which checks the rule and returns
//! the canonical spelling; the macro derives parsing, display, borrowing and serde from it.
//! A value type that is not a plain string (a dyno name, a dyno size) parses and displays
//! itself and gets its string conversions from [`string_conversions!`].

/// Implements `FromStr`, `TryFrom<String>`, `TryFrom<&str>`, `Display`, `AsRef<str>`,
/// `Borrow<str>`, `as_str`, `From<Type> for String` and comparisons with `str` for a newtype
/// `$name(String)` with an associated `canonicalize` function returning `$error`.
macro_rules! string_type {
    ($name:ident, $error:ty) => {
        impl $name {
            /// The value as a string slice, in its canonical form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::canonicalize(value.to_owned()).map($name)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::canonicalize(value).map($name)
            }
        }

        try_from_str!($name, $error);

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Hash, Eq and Ord are derived from the inner `String`, so they agree with `str`'s.
        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// Implements `TryFrom<&str>` through `FromStr`.
macro_rules! try_from_str {
    ($name:ident, $error:ty) => {
        impl TryFrom<&str> for $name {
            type Error = $error;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
    };
}

/// Implements `TryFrom<String>` and `TryFrom<&str>` through `FromStr`, and
/// `From<$name> for String` through `Display`: what `#[serde(try_from = "String", into =
/// "String")]` needs, for a type that parses and displays itself.
macro_rules! string_conversions {
    ($name:ident, $error:ty) => {
        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        try_from_str!($name, $error);

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.to_string()
            }
        }
    };
}
