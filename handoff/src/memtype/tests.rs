//! Memory types and how the MTRR and PAT types combine.

use super::MemType::{self, Uc, UcMinus, Wb, Wc, Wp, Wt};
use super::effective_type;

#[test]
fn mem_type_encodings() {
    for (raw, ty) in [(0, Uc), (1, Wc), (4, Wt), (5, Wp), (6, Wb)] {
        assert_eq!(MemType::from_mtrr(raw), Some(ty));
        assert_eq!(MemType::from_pat(raw), Some(ty));
        assert_eq!(ty.encoding(), raw);
    }
    assert_eq!(MemType::from_mtrr(7), None);
    assert_eq!(MemType::from_pat(7), Some(UcMinus));
    for raw in [2, 3, 8, 0x16, 0xff] {
        assert_eq!(MemType::from_mtrr(raw), None, "{raw}");
        assert_eq!(MemType::from_pat(raw), None, "{raw}");
    }
    assert_eq!(UcMinus.to_string(), "UC-");
    assert_eq!(Wb.to_string(), "WB");
}

// -- effective types: one test per row of the SDM table ------------------

macro_rules! effective {
    ($($name:ident: $mtrr:ident x $pat:ident => $eff:ident;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(effective_type($mtrr, $pat), $eff);
        }
    )*};
}

effective! {
    effective_uc_uc: Uc x Uc => Uc;
    effective_uc_ucm: Uc x UcMinus => Uc;
    effective_uc_wc: Uc x Wc => Wc;
    effective_uc_wt: Uc x Wt => Uc;
    effective_uc_wb: Uc x Wb => Uc;
    effective_uc_wp: Uc x Wp => Uc;
    effective_wc_uc: Wc x Uc => Uc;
    effective_wc_ucm: Wc x UcMinus => Wc;
    effective_wc_wc: Wc x Wc => Wc;
    effective_wc_wt: Wc x Wt => Uc;
    effective_wc_wb: Wc x Wb => Wc;
    effective_wc_wp: Wc x Wp => Uc;
    effective_wt_uc: Wt x Uc => Uc;
    effective_wt_ucm: Wt x UcMinus => Uc;
    effective_wt_wc: Wt x Wc => Wc;
    effective_wt_wt: Wt x Wt => Wt;
    effective_wt_wb: Wt x Wb => Wt;
    effective_wt_wp: Wt x Wp => Wp;
    effective_wb_uc: Wb x Uc => Uc;
    effective_wb_ucm: Wb x UcMinus => Uc;
    effective_wb_wc: Wb x Wc => Wc;
    effective_wb_wt: Wb x Wt => Wt;
    effective_wb_wb: Wb x Wb => Wb;
    effective_wb_wp: Wb x Wp => Wp;
    effective_wp_uc: Wp x Uc => Uc;
    effective_wp_ucm: Wp x UcMinus => Wc;
    effective_wp_wc: Wp x Wc => Wc;
    effective_wp_wt: Wp x Wt => Wt;
    effective_wp_wb: Wp x Wb => Wp;
    effective_wp_wp: Wp x Wp => Wp;
}

#[test]
fn effective_type_never_yields_uc_minus() {
    for mtrr in [Uc, Wc, Wt, Wp, Wb, UcMinus] {
        for pat in [Uc, Wc, Wt, Wp, Wb, UcMinus] {
            assert_ne!(effective_type(mtrr, pat), UcMinus);
        }
        assert_eq!(effective_type(UcMinus, mtrr), effective_type(Uc, mtrr));
    }
}
