//! A picture handed from the decoder to the JPEG encoder, free of any libav type.

/// Borrowed full-range (JPEG) 4:2:0 planes; chroma planes are `ceil(w/2) x ceil(h/2)`.
#[derive(Debug, Clone, Copy)]
pub struct Yuv420<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub u_stride: usize,
    pub v_stride: usize,
}

impl Yuv420<'_> {
    /// A tightly packed copy, to hand to another thread while the decoder reuses its
    /// buffers.
    pub fn to_owned_picture(&self) -> OwnedYuv420 {
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        OwnedYuv420 {
            width: self.width,
            height: self.height,
            y: pack(self.y, self.y_stride, self.width, self.height),
            u: pack(self.u, self.u_stride, cw, ch),
            v: pack(self.v, self.v_stride, cw, ch),
        }
    }
}

/// Owned full-range 4:2:0 planes without row padding.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedYuv420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl OwnedYuv420 {
    /// A mid-gray picture, for tests that need any picture at all.
    #[cfg(test)]
    pub fn gray(width: usize, height: usize) -> OwnedYuv420 {
        let chroma = width.div_ceil(2) * height.div_ceil(2);
        OwnedYuv420 {
            width,
            height,
            y: vec![128; width * height],
            u: vec![128; chroma],
            v: vec![128; chroma],
        }
    }

    pub fn view(&self) -> Yuv420<'_> {
        let cw = self.width.div_ceil(2);
        Yuv420 {
            width: self.width,
            height: self.height,
            y: &self.y,
            u: &self.u,
            v: &self.v,
            y_stride: self.width,
            u_stride: cw,
            v_stride: cw,
        }
    }
}

fn pack(plane: &[u8], stride: usize, width: usize, height: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    for row in plane.chunks(stride).take(height) {
        out.extend_from_slice(&row[..width.min(row.len())]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_copies_drop_row_padding() {
        // 3x3 luma in rows of 4, 2x2 chroma in rows of 3.
        let y = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0];
        let u = [10, 11, 0, 12, 13, 0];
        let v = [20, 21, 0, 22, 23, 0];
        let view = Yuv420 {
            width: 3,
            height: 3,
            y: &y,
            u: &u,
            v: &v,
            y_stride: 4,
            u_stride: 3,
            v_stride: 3,
        };
        let owned = view.to_owned_picture();
        assert_eq!(owned.y, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(owned.u, [10, 11, 12, 13]);
        assert_eq!(owned.view().v, &[20, 21, 22, 23]);
        assert_eq!(owned.view().u_stride, 2);
    }
}
