//! A model trained offline applied to each event: points ("x,y,..." text) are assigned to the nearest
//! centroid of a k-means model (a JSON array of centroids). Output: key = the cluster's index, value = the
//! point as it came.

use std::sync::Arc;

use crate::codec::Utf8;
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

pub fn nearest(centroids: &[Vec<f64>], point: &[f64]) -> Option<usize> {
    centroids
        .iter()
        .enumerate()
        .filter(|(_, c)| c.len() == point.len())
        .map(|(i, c)| {
            (
                i,
                c.iter()
                    .zip(point)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>(),
            )
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

pub fn parse_point(text: &str) -> Option<Vec<f64>> {
    text.split(',').map(|x| x.trim().parse().ok()).collect()
}

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let path = args.path("model")?;
    let text = std::fs::read_to_string(&path).map_err(|error| JobConfigError::Read {
        what: "model",
        path: path.clone(),
        error,
    })?;
    let centroids: Vec<Vec<f64>> =
        serde_json::from_str(&text).map_err(|error| JobConfigError::BadModel {
            path: path.clone(),
            error,
        })?;
    if centroids.is_empty() {
        return Err(JobConfigError::EmptyModel(path));
    }
    let centroids = Arc::new(centroids);
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let centroids = Arc::clone(&centroids);
        let assigned = ctx.topic(&args.input, Utf8, Utf8).flat_map(move |r| {
            parse_point(&r.value)
                .and_then(|p| nearest(&centroids, &p))
                .map(|i| (i.to_string(), r.value.clone()))
        });
        ctx.to_topic(&assigned, &args.output, Utf8, Utf8);
        Ok(())
    }))
}
