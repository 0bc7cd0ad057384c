// Typed launch overloads, 0 to 12 arguments: each argument is copied to this frame, a stack array of
// pointers to the copies is what cuLaunchKernel reads (it copies the values before returning). The sizes and
// kinds of the arguments go along for launchers that check them against the kernel (tests); the driver ignores them.
// One pattern, repeated: keep the overloads uniform.
namespace Dicc.Engine.Backends.Cuda.Runtime;

public sealed unsafe partial class CudaKernel
{
    public void Launch(in LaunchConfig config, CudaStream? stream) => Submit(config, stream, null, null, null, 0);

    public void Launch<T1>(in LaunchConfig config, CudaStream? stream, T1 a1)
        where T1 : unmanaged
    {
        void** p = stackalloc void*[1];
        p[0] = &a1;
        int* s = stackalloc int[] { sizeof(T1) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>() };
        Submit(config, stream, p, s, k, 1);
    }

    public void Launch<T1, T2>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2)
        where T1 : unmanaged
        where T2 : unmanaged
    {
        void** p = stackalloc void*[2];
        p[0] = &a1;
        p[1] = &a2;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>() };
        Submit(config, stream, p, s, k, 2);
    }

    public void Launch<T1, T2, T3>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
    {
        void** p = stackalloc void*[3];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>() };
        Submit(config, stream, p, s, k, 3);
    }

    public void Launch<T1, T2, T3, T4>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
    {
        void** p = stackalloc void*[4];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>() };
        Submit(config, stream, p, s, k, 4);
    }

    public void Launch<T1, T2, T3, T4, T5>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
    {
        void** p = stackalloc void*[5];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>() };
        Submit(config, stream, p, s, k, 5);
    }

    public void Launch<T1, T2, T3, T4, T5, T6>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
    {
        void** p = stackalloc void*[6];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>() };
        Submit(config, stream, p, s, k, 6);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
    {
        void** p = stackalloc void*[7];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>() };
        Submit(config, stream, p, s, k, 7);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
    {
        void** p = stackalloc void*[8];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        p[7] = &a8;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7), sizeof(T8) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>(), ArgumentKind<T8>() };
        Submit(config, stream, p, s, k, 8);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
        where T9 : unmanaged
    {
        void** p = stackalloc void*[9];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        p[7] = &a8;
        p[8] = &a9;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7), sizeof(T8), sizeof(T9) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>(), ArgumentKind<T8>(), ArgumentKind<T9>() };
        Submit(config, stream, p, s, k, 9);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
        where T9 : unmanaged
        where T10 : unmanaged
    {
        void** p = stackalloc void*[10];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        p[7] = &a8;
        p[8] = &a9;
        p[9] = &a10;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7), sizeof(T8), sizeof(T9), sizeof(T10) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>(), ArgumentKind<T8>(), ArgumentKind<T9>(), ArgumentKind<T10>() };
        Submit(config, stream, p, s, k, 10);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
        where T9 : unmanaged
        where T10 : unmanaged
        where T11 : unmanaged
    {
        void** p = stackalloc void*[11];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        p[7] = &a8;
        p[8] = &a9;
        p[9] = &a10;
        p[10] = &a11;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7), sizeof(T8), sizeof(T9), sizeof(T10), sizeof(T11) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>(), ArgumentKind<T8>(), ArgumentKind<T9>(), ArgumentKind<T10>(), ArgumentKind<T11>() };
        Submit(config, stream, p, s, k, 11);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(in LaunchConfig config, CudaStream? stream, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
        where T9 : unmanaged
        where T10 : unmanaged
        where T11 : unmanaged
        where T12 : unmanaged
    {
        void** p = stackalloc void*[12];
        p[0] = &a1;
        p[1] = &a2;
        p[2] = &a3;
        p[3] = &a4;
        p[4] = &a5;
        p[5] = &a6;
        p[6] = &a7;
        p[7] = &a8;
        p[8] = &a9;
        p[9] = &a10;
        p[10] = &a11;
        p[11] = &a12;
        int* s = stackalloc int[] { sizeof(T1), sizeof(T2), sizeof(T3), sizeof(T4), sizeof(T5), sizeof(T6), sizeof(T7), sizeof(T8), sizeof(T9), sizeof(T10), sizeof(T11), sizeof(T12) };
        byte* k = stackalloc byte[] { ArgumentKind<T1>(), ArgumentKind<T2>(), ArgumentKind<T3>(), ArgumentKind<T4>(), ArgumentKind<T5>(), ArgumentKind<T6>(), ArgumentKind<T7>(), ArgumentKind<T8>(), ArgumentKind<T9>(), ArgumentKind<T10>(), ArgumentKind<T11>(), ArgumentKind<T12>() };
        Submit(config, stream, p, s, k, 12);
    }
}
