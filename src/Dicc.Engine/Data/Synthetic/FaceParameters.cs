using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data.Synthetic;

/// <summary>
/// Everything that decides one synthetic face: who it is (shape, tones, feature placement), how it is
/// photographed (position, scale, roll, lighting, noise) and the expression (brows, eyes, nose, mouth).
/// Geometry is in face units: the canvas spans [-1, 1] on both axes before the face's own scale and roll,
/// y grows downwards.
/// </summary>
public record struct FaceParameters
{
    // Pose and photograph.
    /// <summary>Pose: the face's centre, scale and roll.</summary>
    public float CenterX, CenterY, Scale, Roll;
    /// <summary>The background's brightness and its gradient.</summary>
    public float Background, BackgroundGradientX, BackgroundGradientY;
    /// <summary>Lighting direction, contrast and pixel noise.</summary>
    public float LightX, LightY, Contrast, NoiseSigma;

    // Identity.
    /// <summary>Face shape.</summary>
    public float FaceWidth, FaceHeight, ChinTaper;
    /// <summary>Skin and hair brightness, where the hair starts.</summary>
    public float Skin, Hair, HairLine;
    /// <summary>Eyes: spacing, height, width and gaze.</summary>
    public float EyeSpacing, EyeY, EyeWidth, GazeX;
    /// <summary>Brows: gap above the eyes, thickness, darkness.</summary>
    public float BrowGap, BrowThickness, BrowDarkness;
    /// <summary>Mouth: height, width and lip darkness.</summary>
    public float MouthY, MouthWidth, LipDarkness;

    // Expression (all zero for a neutral face).
    /// <summary>Upward shift of the inner / outer brow ends (negative: lowered).</summary>
    public float BrowInnerRaise, BrowOuterRaise;
    /// <summary>Inner brow ends drawn toward the midline (frown).</summary>
    public float BrowPull;
    /// <summary>Eye opening relative to a relaxed eye (1).</summary>
    public float EyeOpenness;
    /// <summary>Mouth corners up (positive) or down (negative), in face units.</summary>
    public float MouthCurve;
    /// <summary>Gap between the lips, in face units.</summary>
    public float MouthOpen;
    /// <summary>Mouth width relative to the identity's (stretched > 1, rounded &lt; 1).</summary>
    public float MouthStretch;
    /// <summary>Raised upper lip (disgust), in face units.</summary>
    public float UpperLipRaise;
    /// <summary>One mouth corner higher than the other (unilateral disgust / contempt).</summary>
    public float MouthAsymmetry;
    /// <summary>Visible teeth in the mouth opening, 0..1.</summary>
    public float Teeth;
    /// <summary>Depth of nose-bridge wrinkles (disgust, some anger), 0..1.</summary>
    public float NoseWrinkle;
    /// <summary>Depth of the nose-to-mouth-corner folds (smiles, disgust), 0..1.</summary>
    public float SmileLines;
    /// <summary>Raised, brighter cheeks (smiles), 0..1.</summary>
    public float CheekRaise;

    /// <summary>A random person photographed at random, with a neutral face.</summary>
    public static FaceParameters RandomNeutral(RandomStream random)
    {
        float U(float lo, float hi) => lo + (hi - lo) * random.NextFloat();
        float N(float mean, float sd) => mean + sd * (float)random.NextNormal();
        return new FaceParameters
        {
            CenterX = N(0, 0.04f),
            CenterY = N(0.06f, 0.04f),
            Scale = U(1.0f, 1.22f),
            Roll = N(0, 0.07f),
            Background = U(0.08f, 0.75f),
            BackgroundGradientX = N(0, 0.12f),
            BackgroundGradientY = N(0, 0.12f),
            LightX = N(0, 0.25f),
            LightY = N(-0.05f, 0.12f),
            Contrast = U(0.7f, 1.2f),
            NoiseSigma = U(0.008f, 0.045f),

            FaceWidth = N(0.72f, 0.04f),
            FaceHeight = N(0.93f, 0.04f),
            ChinTaper = U(0.15f, 0.4f),
            Skin = U(0.4f, 0.85f),
            Hair = U(0.04f, 0.55f),
            HairLine = N(-0.6f, 0.07f),
            EyeSpacing = N(0.31f, 0.02f),
            EyeY = N(-0.1f, 0.03f),
            EyeWidth = N(0.135f, 0.012f),
            GazeX = N(0, 0.025f),
            BrowGap = N(0.17f, 0.02f),
            BrowThickness = N(0.045f, 0.008f),
            BrowDarkness = U(0.35f, 0.8f),
            MouthY = N(0.5f, 0.035f),
            MouthWidth = N(0.24f, 0.025f),
            LipDarkness = U(0.1f, 0.35f),

            EyeOpenness = 1,
            MouthStretch = 1,
            SmileLines = U(0, 0.25f),
        };
    }
}
