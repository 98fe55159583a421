//! Physical memory: the frame allocator, the kernel heap, the DMA region and reads of firmware memory.

pub mod dma;
pub mod frames;
pub mod heap;
pub mod identity;
