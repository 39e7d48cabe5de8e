//! Points as text, in MLlib's formats: a vector is `[1.0,2.5]` or `1.0,2.5` (or space separated), a labelled
//! point `(1.0,[2.0,3.0])` as `LabeledPoint.parse` reads it, or `1.0,2.0,3.0` with the label first.

use serde::{Deserialize, Serialize};

pub type Vector = Vec<f64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledPoint {
    pub label: f64,
    pub features: Vector,
}

/// A vector, or None when the text is not one (or holds a non-finite number).
pub fn parse_vector(text: &str) -> Option<Vector> {
    let t = text.trim();
    let inner = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    let v: Option<Vector> = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|x| x.parse::<f64>().ok().filter(|f| f.is_finite()))
        .collect();
    v.filter(|v| !v.is_empty())
}

pub fn parse_labeled_point(text: &str) -> Option<LabeledPoint> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        let (label, features) = inner.split_once(',')?;
        let label = label.trim().parse::<f64>().ok().filter(|l| l.is_finite())?;
        return Some(LabeledPoint {
            label,
            features: parse_vector(features)?,
        });
    }
    let mut all = parse_vector(t)?;
    if all.len() < 2 {
        return None;
    }
    let label = all.remove(0);
    Some(LabeledPoint {
        label,
        features: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_labelled_points_read_mllib_text() {
        assert_eq!(parse_vector("[1.0, 2.5]"), Some(vec![1.0, 2.5]));
        assert_eq!(parse_vector("1,2 3"), Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(parse_vector("1,x"), None);
        assert_eq!(parse_vector("[]"), None);
        assert_eq!(parse_vector("1,NaN"), None);
        let p = parse_labeled_point("(1.0,[2.0,3.0])").expect("mllib form");
        assert_eq!((p.label, p.features), (1.0, vec![2.0, 3.0]));
        let p = parse_labeled_point("0,4,5").expect("label first");
        assert_eq!((p.label, p.features), (0.0, vec![4.0, 5.0]));
        assert_eq!(parse_labeled_point("3"), None);
        assert_eq!(parse_labeled_point("(1.0,[])"), None);
    }
}
