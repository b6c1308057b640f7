use std::collections::HashMap;

use super::*;
use crate::augment::Augment;
use crate::config::{DropoutMask, Preset, Schedule};
use crate::model::{Dims, Init};
use crate::modelfile::load_model_image;
use crate::optim;

/// The settings version 2 added, which version 1 files lack.
const VERSION_2_BEGAN_WITH: [&str; 8] = [
    "optimizer",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "decay_bias",
    "max_norm",
    "input_dropout",
];

#[test]
fn checkpoint_round_trip_and_damage() {
    let dims = Dims::mnist(&[4]);
    let (p, v) = (
        Params::init(dims.clone(), Init::He, 1),
        Params::init(dims, Init::Normal(0.01), 2),
    );
    let shape = RunShape {
        augment: Augment::Elastic {
            sigma: 3.0,
            alpha: 20.0,
        },
        init: Init::Normal(0.01),
        preset: Preset::Seed,
        ..round_trip_shape()
    };
    let state = State {
        velocity: &v,
        exp_avg_sq: None,
    };
    let bytes = checkpoint_bytes(&p, state, &shape, 25, (28, 28), None, None);
    let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
    assert_eq!(
        (
            c.params.clone(),
            c.velocity.clone(),
            c.shape.clone(),
            c.steps
        ),
        (p.clone(), v.clone(), shape.clone(), 25)
    );
    assert_eq!(c.epoch(), 2);
    assert!(shape.differences(&shape).is_empty());
    let mut other = shape.clone();
    other.hidden = vec![8, 3];
    other.lr = 0.2;
    assert_eq!(
        shape.differences(&other),
        ["hidden 4 vs 8,3", "lr 0.1 vs 0.2"]
    );
    // The same bytes read as other images differ; a checkpoint from
    // before the geometry was recorded is not held to it.
    let mut rect = shape.clone();
    rect.data_image = Some((14, 56));
    assert_eq!(shape.differences(&rect), ["data_image 28x28 vs 14x56"]);
    let old = RunShape {
        data_image: None,
        ..shape.clone()
    };
    assert!(old.differences(&rect).is_empty());
    // A position past the end of the run is refused.
    let bytes = checkpoint_bytes(&p, state, &shape, 31, (28, 28), None, None);
    let e = checkpoint_from_bytes(&bytes, Path::new("c"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("step 31 of a 30-step run"), "{e}");
    // Inside an epoch (step 25 of epoch 3's 10), the epoch's sums so far
    // come back to the bit; damaged ones are named.
    let so_far = EpochSoFar {
        loss_sum: 0.1 + 0.2,
        correct: 77,
        seen: 500,
    };
    let bytes = checkpoint_bytes(&p, state, &shape, 25, (28, 28), Some(so_far), None);
    let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
    assert_eq!(c.so_far, Some(so_far));
    assert_eq!(
        c.so_far.unwrap().loss_sum.to_bits(),
        (0.1f64 + 0.2).to_bits()
    );
    // (Five whole batches of 100 are 500 images: 499 or 501 no run saw; a
    // run stops at a batch mean past 100 nats, so its 500 images sum to at
    // most 50,000.)
    let bad_sums = [
        "0.3,501,500",
        "-1.0,1,500",
        "NaN,1,500",
        "50001.0,1,500",
        "1e300,1,500",
        // Not as a run writes them (`{:?}` of the sum).
        "0.300000000000000044,77,500",
        "+0.30000000000000004,77,500",
        "0.30000000000000004,077,500",
        "0.3,77",
        "0.3,77,500,1",
        "0.3,77,499",
        "0.3,77,501",
        "0.3,77,600",
        "0.3,0,0",
    ];
    for bad in bad_sums {
        let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
            .unwrap()
            .metadata;
        meta.insert(SO_FAR_KEY.into(), bad.into());
        let b = to_bytes(&p, &[(MOMENTUM, &v)], meta);
        let e = checkpoint_from_bytes(&b, Path::new("c"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("simplenn.epoch_so_far") && e.contains("damaged"),
            "{bad}: {e}"
        );
    }
    // Every batch at the bound: a run that has not diverged.
    let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
        .unwrap()
        .metadata;
    meta.insert(SO_FAR_KEY.into(), "50000.0,77,500".into());
    meta.insert(LAST_LOSS_KEY.into(), "100.0".into());
    let b = to_bytes(&p, &[(MOMENTUM, &v)], meta);
    let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
    assert_eq!(c.so_far.map(|s| s.loss_sum), Some(50000.0));
    assert_eq!(c.last_epoch_loss, Some(100.0));
    // Sums of fewer whole batches than the epoch ran (builds that summed
    // only a resumed part's batches): dropped, as if none were written.
    let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
        .unwrap()
        .metadata;
    meta.insert(SO_FAR_KEY.into(), "0.3,77,200".into());
    let b = to_bytes(&p, &[(MOMENTUM, &v)], meta);
    let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
    assert_eq!((c.steps, c.so_far), (25, None));

    // Metadata that the tensors or the run's arithmetic contradict, and
    // optimiser state that is not finite: each refused, and said so.
    let at_20 = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, None);
    let meta = from_bytes(&at_20, Path::new("c"), &[MOMENTUM])
        .unwrap()
        .metadata;
    let error = |meta: HashMap<String, String>, v: &Params| {
        let b = to_bytes(&p, &[(MOMENTUM, v)], meta);
        match checkpoint_from_bytes(&b, Path::new("c")) {
            Ok(_) => "loaded".to_string(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(error(meta.clone(), &v), "loaded");
    // A library run's hand-built config may pick any initialisation its
    // checks allow, with any preset.
    for (key, value) in [
        ("init", "normal:0.05"),
        // σ 0, all weights 0 (the checks allow it: training breaks the tie
        // through the biases).
        ("init", "normal:0"),
        ("init", "he"),
        ("preset", "default"),
    ] {
        let mut m = meta.clone();
        m.insert(format!("simplenn.{key}"), value.into());
        assert_eq!(error(m, &v), "loaded", "{key} = {value}");
    }
    for (key, value, says) in [
        (
            "checkpoint_version",
            "0",
            "checkpoint version 0, this simplenn reads versions 1 to 2",
        ),
        (
            "checkpoint_version",
            "3",
            "checkpoint version 3, this simplenn reads versions 1 to 2",
        ),
        (
            "val",
            "1050",
            "(batch_size 100, val 1050, train_images 1050) is impossible",
        ),
        (
            "classes",
            "9",
            "says hidden 4 and 9 classes but the tensors are 784-4-10",
        ),
        // An unfinished epoch's sums on an epoch's last step (20 of 10-step epochs).
        (
            "epoch_so_far",
            "0.3,77,90",
            "simplenn.epoch_so_far = \"0.3,77,90\" is impossible",
        ),
        (
            "last_epoch_train_loss",
            "-0.5",
            "simplenn.last_epoch_train_loss = \"-0.5\" is impossible",
        ),
        (
            "last_epoch_train_loss",
            "NaN",
            "simplenn.last_epoch_train_loss = \"NaN\" is impossible",
        ),
        // An initialisation no run can have.
        (
            "init",
            "normal:-1",
            "simplenn.init = \"normal:-1\" is invalid",
        ),
        (
            "init",
            "normal:NaN",
            "simplenn.init = \"normal:NaN\" is invalid",
        ),
        (
            "init",
            "normal:inf",
            "simplenn.init = \"normal:inf\" is invalid",
        ),
        // Not as a run writes it (`{:?}` of the loss).
        (
            "last_epoch_train_loss",
            "0.50",
            "simplenn.last_epoch_train_loss = \"0.50\" is impossible",
        ),
        // Past the mean at which every run stops as diverged.
        (
            "last_epoch_train_loss",
            "100.01",
            "simplenn.last_epoch_train_loss = \"100.01\" is impossible",
        ),
        (
            "checkpoint_every",
            "0",
            "simplenn.checkpoint_every = \"0\" is impossible",
        ),
        (
            "test_every_epoch",
            "yes",
            "simplenn.test_every_epoch = \"yes\" is impossible",
        ),
        // Two epochs done (20 steps of 10).
        (
            "epoch",
            "7",
            "simplenn.epoch = \"7\" disagrees with simplenn.steps = \"20\" (10 steps an epoch)",
        ),
        // The steps edited: named with the epoch, not through the
        // checks that take them as they are (the last epoch's loss,
        // which a run that has not finished epoch 1 cannot have).
        (
            "steps",
            "9",
            "simplenn.epoch = \"2\" disagrees with simplenn.steps = \"9\" (10 steps an epoch)",
        ),
        (
            "test_reached_98",
            "3",
            "simplenn.test_reached_98 = \"3\" is impossible",
        ),
        (
            "test_reached_99",
            "0",
            "simplenn.test_reached_99 = \"0\" is impossible",
        ),
        (
            "test_reached_98",
            "by two",
            "simplenn.test_reached_98 = \"by two\" is impossible",
        ),
        (
            "milestones",
            "85,,90",
            "simplenn.milestones = \"85,,90\" is impossible",
        ),
        // Values a run would write otherwise.
        ("hidden", "+4", "simplenn.hidden = \"+4\" is invalid"),
        (
            "batch_size",
            "0100",
            "simplenn.batch_size = \"0100\" is invalid",
        ),
        ("lr", "0.10", "simplenn.lr = \"0.10\" is invalid"),
        ("lr", "1e-1", "simplenn.lr = \"1e-1\" is invalid"),
        (
            "elastic_sigma",
            "3.0",
            "simplenn.elastic_sigma = \"3.0\" is invalid",
        ),
        ("steps", "020", "c: checkpoint has no valid simplenn.steps"),
        (
            "epoch",
            "02",
            "simplenn.epoch = \"02\" disagrees with simplenn.steps = \"20\"",
        ),
        (
            "checkpoint_every",
            "+1",
            "simplenn.checkpoint_every = \"+1\" is impossible",
        ),
        (
            "milestones",
            "85, 90",
            "simplenn.milestones = \"85, 90\" is impossible",
        ),
        (
            "milestones",
            "90,85",
            "simplenn.milestones = \"90,85\" is impossible",
        ),
        (
            "test_reached_98",
            "02",
            "simplenn.test_reached_98 = \"02\" is impossible",
        ),
        (
            "test_reached_98",
            "+2",
            "simplenn.test_reached_98 = \"+2\" is impossible",
        ),
        // `none from 1` is `none`; from epoch 3, past the 2 done.
        (
            "test_reached_98",
            "none from 1",
            "simplenn.test_reached_98 = \"none from 1\" is impossible",
        ),
        (
            "test_reached_98",
            "none from 3",
            "simplenn.test_reached_98 = \"none from 3\" is impossible",
        ),
        // A milestone the run did not report (it reported 98 and 99).
        (
            "test_reached_85",
            "1",
            "simplenn.test_reached_85 = \"1\" is impossible",
        ),
        // Fine alone, impossible with the rest: a shift as wide as the
        // 28 × 28 images.
        (
            "augment",
            "shift:28",
            "simplenn.augment = \"shift:28\" is impossible for its 28 × 28 images",
        ),
    ] {
        let mut m = meta.clone();
        m.insert(format!("simplenn.{key}"), value.into());
        if key == "augment" {
            // The shape's elastic parameters go with its elastic.
            m.retain(|k, _| !k.starts_with("simplenn.elastic_"));
        }
        let e = error(m, &v);
        assert!(e.contains(says), "{key} {value}: {e}");
    }
    // A later version than this build reads is said to be, whatever
    // its keys.
    let mut m = meta.clone();
    m.insert("simplenn.checkpoint_version".into(), "3".into());
    m.remove("simplenn.max_norm");
    assert!(
        error(m, &v).contains("checkpoint version 3, this simplenn reads versions 1 to 2"),
        "future version"
    );
    // A key every version 2 file has, missing: edited, not an old
    // file's default. A version 1 file never had it; nor did early
    // version 2 files have dropout_mask.
    assert_eq!(meta["simplenn.checkpoint_version"], "2");
    for key in std::iter::once("classes").chain(VERSION_2_BEGAN_WITH) {
        let mut m = meta.clone();
        m.remove(&format!("simplenn.{key}"));
        let e = error(m.clone(), &v);
        assert!(
            e.contains(&format!(
                "checkpoint metadata has no simplenn.{key}, which every version 2 checkpoint has"
            )),
            "{key}: {e}"
        );
        m.insert("simplenn.checkpoint_version".into(), "1".into());
        assert_eq!(error(m, &v), "loaded", "{key}");
    }
    let mut m = meta.clone();
    m.remove("simplenn.dropout_mask");
    assert_eq!(error(m, &v), "loaded");
    // A key every version had, missing from a file that says it is a
    // checkpoint: damage, not a --save model given to --resume.
    for key in ["lr", "seed", "hidden", "data_md5"] {
        let mut m = meta.clone();
        m.remove(&format!("simplenn.{key}"));
        let e = error(m, &v);
        assert!(
            e.ends_with(&format!(
                "checkpoint metadata has no simplenn.{key}; the file is damaged, use another checkpoint"
            )),
            "{key}: {e}"
        );
    }
    // Milestones whose epochs contradict each other: the higher one's
    // key is named.
    for (entries, says) in [
        // 99 % reached where 98 % never was.
        (
            &[("test_reached_98", "none"), ("test_reached_99", "2")][..],
            "simplenn.test_reached_99 = \"2\" is impossible",
        ),
        // Of three milestones, the highest reached before the middle one.
        (
            &[
                ("milestones", "90,95.5,99"),
                ("test_reached_90", "1"),
                ("test_reached_95.5", "2"),
                ("test_reached_99", "by 1"),
            ],
            "simplenn.test_reached_99 = \"by 1\" is impossible",
        ),
        // 99 % reached in epoch 2, where 98 % was not, from epoch 2 on.
        (
            &[
                ("test_reached_98", "none from 2"),
                ("test_reached_99", "by 2"),
            ],
            "simplenn.test_reached_99 = \"by 2\" is impossible",
        ),
    ] {
        let mut m = meta.clone();
        for (key, value) in entries {
            m.insert(format!("simplenn.{key}"), (*value).into());
        }
        let e = error(m, &v);
        assert!(e.contains(says), "{entries:?}: {e}");
    }
    // A long value is shown by its start.
    let mut m = meta.clone();
    m.insert(MILESTONES_KEY.into(), "9".repeat(100_000));
    let e = error(m, &v);
    assert!(
        e.contains(&format!(
            "simplenn.milestones = \"{}\"… is impossible",
            "9".repeat(60)
        )),
        "{e}"
    );
    assert!(e.len() < 300, "{e}");
    // ...and so is a long key.
    let mut m = meta.clone();
    let long_key = format!("{REACHED_PREFIX}{}", "9".repeat(100_000));
    m.insert(long_key.clone(), "1".into());
    let e = error(m, &v);
    assert!(
        e.contains(&format!("{}… = \"1\" is impossible", &long_key[..60])),
        "{}",
        &e[..200.min(e.len())]
    );
    assert!(e.len() < 300, "{}", e.len());
    // Two milestones first reached in the same epoch are no damage.
    let habits = Habits {
        test_reached: vec![Reach::At(1), Reach::At(1)],
        ..Habits::default()
    };
    let b = checkpoint_bytes_with(
        &p,
        state,
        &shape,
        (20, (28, 28), None, None),
        habits.clone(),
    );
    let loaded = crate::checkpoint::checkpoint_from_bytes(&b, Path::new("c")).unwrap();
    assert_eq!(loaded.habits, habits);
    // Milestones other than 98 and 99 round-trip, under their own keys.
    let habits = Habits {
        milestones: Milestones::parse("95.5,85").unwrap(),
        test_reached: vec![Reach::By(2), Reach::NotFrom(2)],
        ..Habits::default()
    };
    let at = (20, (28, 28), None, None);
    let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
    let loaded = crate::checkpoint::checkpoint_from_bytes(&b, Path::new("c")).unwrap();
    assert_eq!(loaded.habits, habits);
    let (_, meta_of) = SafeTensors::read_metadata(&b).unwrap();
    let meta_of = meta_of.metadata().clone().unwrap();
    assert_eq!(meta_of[MILESTONES_KEY], "85,95.5");
    assert_eq!(meta_of["simplenn.test_reached_85"], "by 2");
    assert_eq!(meta_of["simplenn.test_reached_95.5"], "none from 2");
    // The run's habits read back; a checkpoint without them has none.
    let names: Vec<String> = (0..shape.classes).map(|c| format!("class {c}")).collect();
    let names = ClassNames::from_metadata(&names.join("\n"), shape.classes, Path::new("n"));
    let habits = Habits {
        checkpoint_every: Some(3),
        test_every_epoch: true,
        milestones: Milestones::default(),
        test_reached: vec![Reach::At(1), Reach::Not],
        class_names: Some(names.unwrap()),
        damaged_names: None,
        save: Some(Some(PathBuf::from("/runs/a b/model.safetensors"))),
        save_seen: Some(crate::atomic::Stamp::from_value(
            "2049,1234567,1764000000.123456789,3190",
        )),
        metrics: Some(PathBuf::from("/runs/a b/run.jsonl")),
    };
    assert!(habits.save_seen.unwrap().is_some());
    let at = (20, (28, 28), None, None);
    let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
    assert_eq!(
        checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits,
        habits
    );
    // The refusal of a checkpoint of metadata `m` (none: "").
    let refusal = |m| {
        let nb = to_bytes(&p, &[(MOMENTUM, &v)], m);
        checkpoint_from_bytes(&nb, Path::new("c"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // What the run saw at --save: no file, a file with no time; and a
    // value no run writes is damage.
    for seen in [None, crate::atomic::Stamp::from_value("1,2,-,0")] {
        let habits = Habits {
            save_seen: Some(seen),
            ..habits.clone()
        };
        let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
        assert_eq!(
            checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits,
            habits
        );
    }
    for value in [
        "",
        "1,2,3",
        "1,2,3.5,4",
        "1,2,3.000000005,4,5",
        "+1,2,-,4",
        "01,2,-,4",
        "1,2,18446744073709551615.999999999,4",
    ] {
        let mut m = meta.clone();
        m.insert(SAVE_KEY.into(), "/runs/m.safetensors".into());
        m.insert(SAVE_SEEN_KEY.into(), value.into());
        let e = refusal(m);
        assert!(
            e.contains(&format!(
                "checkpoint metadata {SAVE_SEEN_KEY} = {value:?} is impossible"
            )),
            "{value:?}: {e}"
        );
    }
    // Paths that are not UTF-8 are kept too, as their bytes: without
    // them a resumed run saved to ./model.safetensors instead.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
        let habits = Habits {
            save: Some(Some(odd(b"/runs/m\xfe.safetensors"))),
            metrics: Some(odd(b"/runs/\xff.jsonl")),
            ..Default::default()
        };
        let b = checkpoint_bytes_with(&p, state, &shape, at, habits.clone());
        assert_eq!(
            checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits,
            habits
        );
        let (_, written) = SafeTensors::read_metadata(&b).unwrap();
        let written = written.metadata().clone().unwrap();
        assert_eq!(written[METRICS_KEY], "bytes:2f72756e732fff2e6a736f6e6c");
        // A path not absolute here is none; bytes that are not hex, a NUL
        // in the path, no path at all, or a path not as a run writes it
        // (UTF-8 as bytes, upper-case hex), no run writes: damage.
        let mut m = meta.clone();
        m.insert(SAVE_KEY.into(), "bytes:ff6d".into());
        let nb = to_bytes(&p, &[(MOMENTUM, &v)], m);
        let h = checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits;
        assert_eq!(h.save, None);
        for key in [SAVE_KEY, METRICS_KEY] {
            for value in [
                "bytes:2f7",
                "bytes:zz",
                "bytes:2f\u{e9}",
                "bytes:2f00",
                "/runs/a\0b",
                "",
                "bytes:",
                "bytes:2f72",
                "bytes:2F72FF",
            ] {
                let mut m = meta.clone();
                m.insert(key.into(), value.into());
                let e = refusal(m);
                assert!(
                    e.contains(&format!("c: checkpoint metadata {key} = {value:?} is impossible; the file is damaged, use another checkpoint")),
                    "{key} = {value:?}: {e}"
                );
            }
        }
    }
    let no_save = Habits {
        save: Some(None),
        ..Default::default()
    };
    let nb = checkpoint_bytes_with(&p, state, &shape, at, no_save.clone());
    assert_eq!(
        checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits,
        no_save
    );
    // A path that is not absolute here (another system's, or not
    // simplenn's) is as good as none: the checkpoint still resumes.
    for (key, path) in [
        (SAVE_KEY, "model.safetensors"),
        (METRICS_KEY, "C:\\runs\\run.jsonl"),
    ] {
        let mut m = meta.clone();
        m.insert(key.into(), path.into());
        let nb = to_bytes(&p, &[(MOMENTUM, &v)], m);
        let h = checkpoint_from_bytes(&nb, Path::new("c")).unwrap().habits;
        assert_eq!((h.save, h.metrics), (None, None), "{key}");
    }
    // The default milestones are not written (a default run's
    // checkpoint is as before); their epochs are, under their old keys.
    let (_, written) = SafeTensors::read_metadata(&b).unwrap();
    let written = written.metadata().clone().unwrap();
    assert!(!written.contains_key(MILESTONES_KEY), "{written:?}");
    assert_eq!(written["simplenn.test_reached_98"], "1");
    assert_eq!(written["simplenn.test_reached_99"], "none");
    // Names for other classes than the checkpoint's are damage, kept
    // aside: a resumed run given --class-names does without them.
    let mut m = meta.clone();
    m.insert(classes::KEY.into(), "a\nb".into());
    let b = to_bytes(&p, &[(MOMENTUM, &v)], m);
    let h = checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits;
    assert_eq!(h.class_names, None);
    let why = h.damaged_names.unwrap_or_default();
    assert!(
        why.contains("simplenn.class_names has 2 names for its 10 classes: the file is damaged"),
        "{why}"
    );
    let b = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, None);
    let none = checkpoint_from_bytes(&b, Path::new("c")).unwrap().habits;
    assert_eq!(none, Habits::default());
    // The last epoch's loss reads back to its bits; before any whole
    // epoch there is none to have.
    let loss = 0.1 + 0.2;
    let b = checkpoint_bytes(&p, state, &shape, 20, (28, 28), None, Some(loss));
    let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
    assert_eq!(c.last_epoch_loss.map(f64::to_bits), Some(loss.to_bits()));
    let b = checkpoint_bytes(&p, state, &shape, 9, (28, 28), None, Some(loss));
    let e = checkpoint_from_bytes(&b, Path::new("c"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("last_epoch_train_loss") && e.contains("impossible"),
        "{e}"
    );
    let mut nan = v.clone();
    nan.data[5] = f32::NAN;
    let e = error(meta, &nan);
    assert!(e.contains("non-finite weights or optimiser state"), "{e}");
}

#[test]
fn adam_state_round_trips_and_version_1_loads_as_sgd() {
    let dims = Dims::mnist(&[4, 3]);
    let p = Params::init(dims.clone(), Init::He, 1);
    let (m, mut v) = (
        Params::init(dims.clone(), Init::Normal(0.01), 2),
        Params::init(dims, Init::Normal(0.02), 3),
    );
    // A mean of squares is never negative.
    v.data.iter_mut().for_each(|x| *x = x.abs());
    let mut shape = RunShape {
        hidden: vec![4, 3],
        lr: 0.001,
        momentum: 0.0,
        dropout: 0.5,
        optimizer: Kind::Adamw,
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-7,
        weight_decay: 0.02,
        decay_bias: false,
        max_norm: Some(3.5),
        input_dropout: 0.2,
        dropout_mask: DropoutMask::Batch,
        ..round_trip_shape()
    };
    let state = State {
        velocity: &m,
        exp_avg_sq: Some(&v),
    };
    let bytes = checkpoint_bytes(&p, state, &shape, 12, (28, 28), None, None);
    let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
    assert_eq!((&c.params, &c.velocity, &c.shape), (&p, &m, &shape));
    assert_eq!(c.exp_avg_sq.as_ref(), Some(&v));
    let names = from_bytes(&bytes, Path::new("c"), &[EXP_AVG, EXP_AVG_SQ]).unwrap();
    assert_eq!(names.extra, vec![m.clone(), v.clone()]);
    let mut negative = v.clone();
    negative.data[7] = -1.0;
    let state = State {
        velocity: &m,
        exp_avg_sq: Some(&negative),
    };
    let bad = checkpoint_bytes(&p, state, &shape, 12, (28, 28), None, None);
    let e = checkpoint_from_bytes(&bad, Path::new("c"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("negative Adam second moment (in exp_avg_sq.0.weight)")
            && e.contains("the file is damaged"),
        "{e}"
    );
    // Another optimiser's state beside its own: damage, not ignored.
    let meta = from_bytes(&bytes, Path::new("c"), &[]).unwrap().metadata;
    let three = to_bytes(
        &p,
        &[(EXP_AVG, &m), (EXP_AVG_SQ, &v), (MOMENTUM, &m)],
        meta.clone(),
    );
    let e = checkpoint_from_bytes(&three, Path::new("c"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor \"momentum.0.bias\" is state that adamw does not keep, which no adamw run writes; the file is damaged"),
        "{e}"
    );

    // A version-1 checkpoint: momentum slab, none of the new metadata.
    (shape.optimizer, shape.beta1, shape.beta2, shape.eps) = (Kind::Sgd, 0.9, 0.999, 1e-8);
    (shape.weight_decay, shape.decay_bias) = (0.0, true);
    (shape.max_norm, shape.input_dropout, shape.momentum) = (None, 0.0, 0.9);
    shape.dropout_mask = DropoutMask::Image;
    let mut meta = shape.to_metadata();
    for k in VERSION_2_BEGAN_WITH.into_iter().chain(["dropout_mask"]) {
        meta.remove(&format!("simplenn.{k}")).unwrap();
    }
    meta.insert("simplenn.kind".into(), "checkpoint".into());
    meta.insert("simplenn.checkpoint_version".into(), "1".into());
    meta.insert("simplenn.steps".into(), "12".into());
    let bytes = to_bytes(&p, &[(MOMENTUM, &m)], meta.clone());
    let c = checkpoint_from_bytes(&bytes, Path::new("old")).unwrap();
    assert_eq!((&c.params, &c.velocity, &c.shape), (&p, &m, &shape));
    assert_eq!(c.exp_avg_sq, None);
    let with_adam = to_bytes(&p, &[(MOMENTUM, &m), (EXP_AVG_SQ, &v)], meta);
    let e = checkpoint_from_bytes(&with_adam, Path::new("old"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor \"exp_avg_sq.0.bias\" is state that sgd does not keep"),
        "{e}"
    );
}

#[test]
fn a_plain_model_is_not_a_checkpoint() {
    let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
    // Said so before its weights are judged too: a model with NaN weights
    // is not told to use another model, which --resume would not take.
    let mut nan = p.clone();
    nan.data[3] = f32::NAN;
    for model in [p, nan] {
        let bytes = to_bytes(&model, &[], HashMap::new());
        let e = checkpoint_from_bytes(&bytes, Path::new("m.st"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a simplenn checkpoint"), "{e}");
    }
}

/// A checkpoint whose weights no model may hold is told to give way to an
/// earlier one, not to "another model", which --resume does not take.
#[test]
fn a_checkpoint_with_nan_weights_points_at_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let shape = round_trip_shape();
    let mut bytes = small_checkpoint(&shape, 5, (28, 28));
    // The first weight of `0.weight` (in the file's layout) made NaN: its
    // data is the first tensor's, found by the header's offsets.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let at = 8 + header_len + header["0.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let path = dir.path().join("c.st");
    std::fs::write(&path, &bytes).unwrap();
    let e = load_checkpoint(&path).err().unwrap().to_string();
    assert!(
        e.ends_with("tensor \"0.weight\" holds NaN or infinite weights, so the model's outputs would be NaN; use an earlier checkpoint"),
        "{e}"
    );
}

/// A checkpoint records its whole epochs done and the version of its
/// metadata (read by later versions to know what they are given).
#[test]
fn a_checkpoint_records_its_epoch_and_version() {
    // 1,000 training images at batch 100: 10 steps an epoch.
    let shape = round_trip_shape();
    for (steps, epoch) in [(0, "0"), (10, "1"), (25, "2"), (30, "3")] {
        let bytes = small_checkpoint(&shape, steps, (28, 28));
        let meta = from_bytes(&bytes, Path::new("c"), &[]).unwrap().metadata;
        let get = |k: &str| meta.get(k).map(String::as_str);
        assert_eq!(get("simplenn.epoch"), Some(epoch), "step {steps}");
        assert_eq!(get("simplenn.checkpoint_version"), Some("2"));
    }
}

/// A checkpoint of non-square images, loaded as a model (eval,
/// predict), still says what shape its images were.
#[test]
fn a_checkpoint_of_non_square_images_keeps_their_shape() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("ck");
    let shape = RunShape {
        data_image: Some((14, 56)),
        ..round_trip_shape()
    };
    std::fs::write(&path, small_checkpoint(&shape, 5, (14, 56))).unwrap();
    assert_eq!(load_model_image(&path).unwrap().1, Some((14, 56)));
    // The two keys must agree: each written alone is a damaged file.
    for (data_image, image) in [((14, 56), (28, 28)), ((28, 28), (14, 56))] {
        let shape = RunShape {
            data_image: Some(data_image),
            ..round_trip_shape()
        };
        std::fs::write(&path, small_checkpoint(&shape, 5, image)).unwrap();
        let by_eval = load_model_image(&path).unwrap_err().to_string();
        let by_resume = checkpoint_from_bytes(&small_checkpoint(&shape, 5, image), &path)
            .err()
            .unwrap()
            .to_string();
        for e in [by_eval, by_resume] {
            assert!(
                e.contains("simplenn.data_image") && e.contains("damaged"),
                "{e}"
            );
        }
    }
}

/// Metadata that disagrees with the tensors is a damaged file, in
/// `eval`'s loader and in `--resume`'s alike.
#[test]
fn metadata_that_disagrees_with_the_tensors_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
    let model = |key: &str, value: &str| {
        let mut meta = HashMap::new();
        meta.insert("simplenn.hidden".to_string(), "4".to_string());
        meta.insert(key.to_string(), value.to_string());
        let path = t.path().join("m");
        std::fs::write(&path, to_bytes(&p, &[], meta)).unwrap();
        load_model_image(&path).map(|(_, image)| image)
    };
    assert_eq!(model("simplenn.image", "14x56").unwrap(), Some((14, 56)));
    // Another program's file (no simplenn.hidden) that records a square
    // shape: kept, so that eval refuses data of another layout.
    let foreign = t.path().join("foreign");
    let meta = HashMap::from([("simplenn.image".to_string(), "28x28".to_string())]);
    std::fs::write(&foreign, to_bytes(&p, &[], meta)).unwrap();
    assert_eq!(load_model_image(&foreign).unwrap().1, Some((28, 28)));
    for (key, value, says) in [
        (
            "simplenn.image",
            "4x9",
            "simplenn.image 4x9, but its first layer takes 784",
        ),
        (
            "simplenn.image",
            "banana",
            "simplenn.image \"banana\", not ROWSxCOLS",
        ),
        (
            "simplenn.hidden",
            "64",
            "simplenn.hidden \"64\", but its tensors are 784-4-10",
        ),
        (
            "simplenn.classes",
            "11",
            "simplenn.classes \"11\", but its tensors are 784-4-10",
        ),
    ] {
        let e = model(key, value).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("the file is damaged"), "{e}");
    }
    let shape = RunShape {
        data_image: Some((4, 9)),
        ..round_trip_shape()
    };
    let e = checkpoint_from_bytes(&small_checkpoint(&shape, 5, (28, 28)), Path::new("c"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("simplenn.data_image 4x9, but its first layer takes 784"),
        "{e}"
    );
    let e = checkpoint_from_bytes(
        &small_checkpoint(&round_trip_shape(), 5, (4, 9)),
        Path::new("c"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("simplenn.image 4x9"), "{e}");
}

/// A data set's MD5 that no run wrote (not 32 lower-case hex digits) is
/// damage to the checkpoint, not another data set to resume on.
#[test]
fn a_data_md5_no_run_wrote_is_damage() {
    let meta = round_trip_shape().to_metadata();
    for v in [
        "abc",
        "",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdeg",
    ] {
        let mut m = meta.clone();
        m.insert("simplenn.data_md5".into(), v.into());
        let e = RunShape::from_metadata(&m, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "simplenn.data_md5 = {v:?} is invalid; the file is damaged"
            )),
            "{e}"
        );
    }
    assert!(RunShape::from_metadata(&meta, Path::new("c")).is_ok());
}

/// The distortion's metadata read key by key: a damaged σ or α is named
/// as itself (it was blamed on `simplenn.augment`), and a missing one is
/// an error, not the paper's value in its place (which resumed another
/// run); σ or α beside no elastic distortion is damage too.
#[test]
fn augment_metadata_is_read_key_by_key() {
    let shape = RunShape {
        augment: Augment::Elastic {
            sigma: 3.0,
            alpha: 20.0,
        },
        ..round_trip_shape()
    };
    let meta = shape.to_metadata();
    let read = |edit: &dyn Fn(&mut HashMap<String, String>)| {
        let mut m = meta.clone();
        edit(&mut m);
        RunShape::from_metadata(&m, Path::new("c")).map(|s| s.augment)
    };
    assert_eq!(read(&|_| {}).unwrap(), shape.augment);
    let set = |k: &'static str, v: &'static str| {
        move |m: &mut HashMap<String, String>| {
            m.insert(format!("simplenn.{k}"), v.into());
        }
    };
    let drop = |k: &'static str| {
        move |m: &mut HashMap<String, String>| {
            m.remove(&format!("simplenn.{k}"));
        }
    };
    for (edit, says) in [
        (
            &set("elastic_sigma", "nan") as &dyn Fn(&mut HashMap<String, String>),
            "simplenn.elastic_sigma = \"nan\" is invalid",
        ),
        (&set("elastic_sigma", "0"), "simplenn.elastic_sigma = \"0\""),
        (
            &set("elastic_alpha", "-1"),
            "simplenn.elastic_alpha = \"-1\"",
        ),
        (&set("elastic_alpha", "x"), "simplenn.elastic_alpha = \"x\""),
        (
            &drop("elastic_sigma"),
            "has simplenn.augment = \"elastic\" but no simplenn.elastic_sigma",
        ),
        (
            &drop("augment"),
            "has simplenn.elastic_sigma but no simplenn.augment",
        ),
        (
            &set("augment", "affine"),
            "has simplenn.elastic_sigma with simplenn.augment = \"affine\"",
        ),
        (&set("augment", "wobble"), "simplenn.augment = \"wobble\""),
    ] {
        let e = read(edit).unwrap_err().to_string();
        assert!(
            e.contains(says) && e.ends_with("the file is damaged, use another checkpoint"),
            "{e}"
        );
    }
    // Checkpoints from before augmentation: none at all.
    let none = |m: &mut HashMap<String, String>| {
        for k in ["augment", "elastic_sigma", "elastic_alpha"] {
            m.remove(&format!("simplenn.{k}"));
        }
    };
    assert_eq!(read(&none).unwrap(), Augment::None);
}

/// A paper preset with He initialisation comes back as itself, not as
/// the default preset that an older checkpoint without the key is
/// taken for.
#[test]
fn a_checkpoint_keeps_its_preset() {
    for preset in [Preset::Simard2003, Preset::Dropout2014, Preset::Default] {
        let shape = RunShape {
            preset,
            init: Init::He,
            ..round_trip_shape()
        };
        let bytes = small_checkpoint(&shape, 5, (28, 28));
        let c = checkpoint_from_bytes(&bytes, Path::new("c")).unwrap();
        assert_eq!(c.shape.preset, preset);
    }
    // Checkpoints from before presets were recorded: the initialisation
    // tells (He for the default network, N(0, σ) for the seed's).
    for (init, preset) in [
        (Init::He, Preset::Default),
        (Init::Normal(0.01), Preset::Seed),
    ] {
        let shape = RunShape {
            preset: Preset::Simard2003,
            init,
            ..round_trip_shape()
        };
        let bytes = small_checkpoint(&shape, 5, (28, 28));
        let mut meta = from_bytes(&bytes, Path::new("c"), &[MOMENTUM])
            .unwrap()
            .metadata;
        assert!(meta.remove("simplenn.preset").is_some());
        let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
        let b = to_bytes(&p, &[(MOMENTUM, &p)], meta);
        let c = checkpoint_from_bytes(&b, Path::new("c")).unwrap();
        assert_eq!(c.shape.preset, preset, "{init:?}");
    }
}

/// A checkpoint of a 784-4-10 model (its weights standing in for the
/// momentum) after `steps` steps of `shape`, its images `image`.
fn small_checkpoint(shape: &RunShape, steps: u64, image: (usize, usize)) -> Vec<u8> {
    let p = Params::init(Dims::mnist(&[4]), Init::He, 1);
    let state = State {
        velocity: &p,
        exp_avg_sq: None,
    };
    checkpoint_bytes(&p, state, shape, steps, image, None, None)
}

/// The run shape of a small checkpoint: 784-4-10, 1,000 training images
/// at batch 100 (10 steps an epoch), 3 epochs.
fn round_trip_shape() -> RunShape {
    RunShape {
        hidden: vec![4],
        classes: 10,
        batch_size: 100,
        epochs: 3,
        lr: 0.1,
        schedule: Schedule::Cosine,
        momentum: 0.9,
        dropout: 0.2,
        optimizer: Kind::Sgd,
        beta1: optim::BETA1,
        beta2: optim::BETA2,
        eps: optim::EPS,
        weight_decay: 0.0,
        decay_bias: true,
        max_norm: None,
        input_dropout: 0.0,
        dropout_mask: DropoutMask::Image,
        augment: Augment::None,
        init: Init::He,
        preset: Preset::Default,
        seed: 7,
        val: 50,
        train_images: 1050,
        data_md5: "0123456789abcdef0123456789abcdef".into(),
        data_image: Some((28, 28)),
    }
}
