using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Dicc.Engine;
using Dicc.Engine.Data;
using OpenCvSharp;

namespace Dicc.FaceDetection;

/// <summary>
/// Frontal faces found by OpenCV's Viola-Jones detector with the Haar cascade
/// <c>haarcascade_frontalface_default.xml</c> (Debian's opencv-data installs it in /usr/share/opencv4/haarcascades/).
/// The image is searched at scales 1.1 apart for faces at least <see cref="MinimumFaceSize"/> pixels wide; a face
/// is kept where at least <see cref="MinimumNeighbours"/> overlapping windows agree (OpenCV's default is 3; 5
/// keeps fewer false faces in textured photos). The image is not histogram-equalised first: on the tests' lab
/// images that found fewer faces (measured in docs/data-formats.md). Thread-safe: each thread has its own classifier.
/// </summary>
public sealed partial class HaarFaceDetector : IFaceDetector, IDisposable
{
    /// <summary>The cascade's file name.</summary>
    public const string CascadeFileName = "haarcascade_frontalface_default.xml";

    /// <summary>Where Debian's opencv-data puts the cascades (and where other distributions do).</summary>
    public static IReadOnlyList<string> CascadeFolders { get; } =
    [
        "/usr/share/opencv4/haarcascades",
        "/usr/share/opencv/haarcascades",
        "/usr/local/share/opencv4/haarcascades",
        "/usr/local/share/opencv/haarcascades",
    ];

    /// <summary>Environment variable naming the cascade file, ahead of the folders above.</summary>
    public const string CascadeVariable = "DICC_FACE_CASCADE";

    public const double ScaleFactor = 1.1;
    public const int MinimumNeighbours = 5;
    public const int MinimumFaceSize = 30;

    private readonly ThreadLocal<CascadeClassifier> _classifiers;

    private HaarFaceDetector(string cascadePath)
    {
        ModelPath = cascadePath;
        _classifiers = new ThreadLocal<CascadeClassifier>(() => new CascadeClassifier(cascadePath), trackAllValues: true);
    }

    public string Name => "haar";

    public string? ModelPath { get; }

    public string Description => string.Create(CultureInfo.InvariantCulture,
        $"OpenCV Haar cascade {Path.GetFileName(ModelPath)}, scale {ScaleFactor}, {MinimumNeighbours} neighbours, faces from {MinimumFaceSize} px");

    /// <summary>
    /// The detector with the cascade at <paramref name="cascadePath"/>, or found in $DICC_FACE_CASCADE and
    /// <see cref="CascadeFolders"/>. When OpenCV's native library cannot be loaded, or there is no usable
    /// cascade file, throws an <see cref="InputException"/> (parameter <c>faceCascade</c> or <c>faceDetector</c>) that
    /// says what to install.
    /// </summary>
    public static HaarFaceDetector Open(string? cascadePath = null)
    {
        string path = cascadePath ?? FindCascade() ?? throw new InputException(
            $"faceCascade: no {CascadeFileName} in {string.Join(", ", CascadeFolders)} (nor ${CascadeVariable}): " +
            "install Debian's opencv-data (apt-get install opencv-data), or name the cascade file.") { Parameter = "faceCascade" };
        if (!File.Exists(path))
            throw new InputException($"faceCascade: {path} does not exist; install Debian's opencv-data (apt-get install opencv-data), " +
                                     $"which puts {CascadeFileName} in /usr/share/opencv4/haarcascades/.") { Parameter = "faceCascade" };
        CheckNativeLibrary();
        var detector = new HaarFaceDetector(path);
        try
        {
            if (detector._classifiers.Value!.Empty())
                throw new InputException($"faceCascade: {path} is not an OpenCV cascade file (it loaded empty).") { Parameter = "faceCascade" };
        }
        catch (OpenCVException e)
        {
            detector.Dispose();
            throw new InputException($"faceCascade: {path} is not an OpenCV cascade file ({OneLine(e.Message)}).", e) { Parameter = "faceCascade" };
        }
        catch
        {
            detector.Dispose();
            throw;
        }
        return detector;
    }

    /// <summary>The cascade file: $DICC_FACE_CASCADE when set, else the first of <see cref="CascadeFolders"/> that holds one; null if none.</summary>
    public static string? FindCascade()
    {
        if (Environment.GetEnvironmentVariable(CascadeVariable) is { Length: > 0 } explicitPath) return explicitPath;
        return CascadeFolders.Select(f => Path.Combine(f, CascadeFileName)).FirstOrDefault(File.Exists);
    }

    /// <summary>OpenCV's version, loading its native library; an <see cref="InputException"/> saying what to install when it cannot be.</summary>
    public static string CheckNativeLibrary()
    {
        try
        {
            return NativeVersion();
        }
        catch (Exception e) when (IsLoadFailure(e))
        {
            throw new InputException(LoadFailureMessage(e), e) { Parameter = "faceDetector" };
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string NativeVersion() => Cv2.GetVersionString() ?? "unknown";

    private static bool IsLoadFailure(Exception e) =>
        e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException ||
        (e is TypeInitializationException { InnerException: { } inner } && IsLoadFailure(inner));

    /// <summary>
    /// What to say when OpenCV's native library does not load: the missing shared library or symbol version from
    /// the loader's message, and the Debian package that provides it where we know it.
    /// </summary>
    internal static string LoadFailureMessage(Exception e)
    {
        string text = OneLine(e is TypeInitializationException { InnerException: { } inner } ? inner.Message : e.Message);
        // The loader tries the library under several names and folders, and reports a dependency it lacks
        // as "<path>/libOpenCvSharpExtern.so: libgtk-3.so.0: cannot open shared object file".
        var missing = MissingLibrary().Matches(text).Select(m => m.Groups[1].Value).Distinct().ToList();
        var dependency = missing.FirstOrDefault(l => !l.Contains("OpenCvSharpExtern", StringComparison.Ordinal));
        var version = MissingVersion().Match(text);
        string advice, detail = "";
        if (dependency is not null)
            advice = $"it needs {dependency}" + (DebianPackages.TryGetValue(dependency, out var package)
                ? $": install Debian's {package} (apt-get install {package})"
                : $": install the package that provides it (apt-file search {dependency})");
        else if (version.Success)
            advice = $"it needs {version.Groups[1].Value}, newer than this system's C/C++ runtime provides (it is built for glibc 2.28 and later)";
        else if (missing.Count > 0)
            advice = $"the library is not there: it belongs in {Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native")}, " +
                     "where building or installing dicc puts it from the OpenCvSharp4.official.runtime.linux-x64 package";
        else
        {
            advice = "install Debian's libgtk-3-0 (apt-get install libgtk-3-0), which it needs, and keep runtimes/linux-x64/native/libOpenCvSharpExtern.so beside dicc";
            detail = $" ({text})";
        }
        return "faceDetector: face detection needs OpenCV's native library (libOpenCvSharpExtern.so, OpenCvSharp4.official.runtime.linux-x64), " +
               $"which did not load: {advice}.{detail}";
    }

    /// <summary>Shared libraries that OpenCV's native library needs beyond a base system, and their Debian 12 packages.</summary>
    private static readonly Dictionary<string, string> DebianPackages = new(StringComparer.Ordinal)
    {
        ["libgtk-3.so.0"] = "libgtk-3-0", ["libgdk-3.so.0"] = "libgtk-3-0",
        ["libpangocairo-1.0.so.0"] = "libpangocairo-1.0-0", ["libpango-1.0.so.0"] = "libpango-1.0-0",
        ["libatk-1.0.so.0"] = "libatk1.0-0", ["libcairo-gobject.so.2"] = "libcairo-gobject2", ["libcairo.so.2"] = "libcairo2",
        ["libgdk_pixbuf-2.0.so.0"] = "libgdk-pixbuf-2.0-0", ["libgio-2.0.so.0"] = "libglib2.0-0", ["libgobject-2.0.so.0"] = "libglib2.0-0",
        ["libglib-2.0.so.0"] = "libglib2.0-0", ["libfreetype.so.6"] = "libfreetype6", ["libharfbuzz.so.0"] = "libharfbuzz0b",
        ["libdrm.so.2"] = "libdrm2", ["libX11.so.6"] = "libx11-6", ["libatomic.so.1"] = "libatomic1",
    };

    [GeneratedRegex(@"([A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): cannot open shared object file")]
    private static partial Regex MissingLibrary();

    [GeneratedRegex(@"version `([A-Z]+_[0-9.]+)' not found")]
    private static partial Regex MissingVersion();

    private static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    public IReadOnlyList<FaceBox> Detect(GrayImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var mat = Mat.FromPixelData(image.Height, image.Width, MatType.CV_8UC1, image.Pixels);
        var found = _classifiers.Value!.DetectMultiScale(mat, ScaleFactor, MinimumNeighbours, HaarDetectionTypes.ScaleImage,
            new Size(MinimumFaceSize, MinimumFaceSize));
        return found.Select(r => new FaceBox(r.X, r.Y, r.Width, r.Height))
            .OrderByDescending(f => f.Area).ThenBy(f => f.Y).ThenBy(f => f.X).ToList();
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var classifier in _classifiers.Values) classifier.Dispose();
        _classifiers.Dispose();
    }
}
