//! Tools around herd that are not the product: `herd-chaos` (a chaos soak of `herd serve`) and
//! `herd-raw` (an unsupervised fork-accept server, the benchmarks' baseline), and [`procfs`], a
//! reader of a running server's processes that the integration tests share.

pub mod procfs;
