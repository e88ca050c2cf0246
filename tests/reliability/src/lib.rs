//! Churn, crash, hostile-input and fuzz suites
