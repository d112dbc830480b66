//! The feature store: live popularity windows, user features, co-visitation.
